package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestHelpDocumentsEverySubcommand(t *testing.T) {
	out, _, code := runBin(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range newRoot().Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if !strings.Contains(out, c.Name()) {
			t.Errorf("tollgate --help does not mention %q", c.Name())
		}
		sub, _, code := runBin(t, nil, c.Name(), "--help")
		if code != 0 || !strings.Contains(sub, "Usage:") {
			t.Errorf("tollgate %s --help: exit %d", c.Name(), code)
		}
	}
}

func TestBadConfigStopsStartupNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad addr flag", nil, []string{"serve", "--addr", "nonsense"}, "--addr"},
		{"bad env twin", []string{"TOLLGATE_TOKEN_TTL=forever"}, []string{"serve"}, "TOLLGATE_TOKEN_TTL"},
		{"ttl out of range", nil, []string{"serve", "--token-ttl", "48h"}, "--token-ttl"},
		{"production without redis", nil, []string{"serve", "--production"}, "--redis-url"},
		{"both modes", nil, []string{"serve", "--production", "--sandbox"}, "--sandbox and --production"},
		{"unknown flag", nil, []string{"serve", "--nope"}, "unknown flag"},
		{"sandbox on a public address", nil, []string{"serve", "--public-url", "https://tollgate.example.com"}, "--public-url"},
		// A hold that can expire while its provider call runs frees money a
		// charge may still take: the two settings must nest.
		{"hold shorter than the handler deadline", nil, []string{"serve", "--hold-ttl", "4m"}, "--hold-ttl (or TOLLGATE_HOLD_TTL): 4m0s must exceed --handler-deadline"},
		{"hold within a minute of the deadline", nil, []string{"serve", "--handler-deadline", "10m", "--hold-ttl", "10m30s"}, "--handler-deadline (10m0s)"},
		{"idempotency lock shorter than the hold", nil, []string{"serve", "--idempotency-lock", "10m"}, "--idempotency-lock (or TOLLGATE_IDEMPOTENCY_LOCK): 10m0s must be at least --hold-ttl"},
		{"handler deadline shorter than a provider request", nil, []string{"stdio", "--handler-deadline", "20s"}, "--handler-deadline"},
		{"a cap that is not an amount", nil, []string{"serve", "--cap", "stripe=abc"}, "--cap (or TOLLGATE_CAP)"},
		// A provider request must end before its call's deadline: serve and
		// stdio refuse the two settings out of order, naming both.
		{"provider timeout as long as the handler deadline", nil, []string{"serve", "--provider-timeout", "5m"}, "--provider-timeout (or TOLLGATE_PROVIDER_TIMEOUT): 5m0s must be shorter than --handler-deadline (5m0s)"},
		{"provider timeout past the handler deadline over stdio", nil, []string{"stdio", "--handler-deadline", "2m", "--provider-timeout", "3m"}, "must be shorter than --handler-deadline (2m0s)"},
		{"provider timeout from its twin", []string{"TOLLGATE_PROVIDER_TIMEOUT=6m"}, []string{"serve"}, "--provider-timeout (or TOLLGATE_PROVIDER_TIMEOUT)"},
		{"a provider API root in the sandbox", nil, []string{"serve", "--stripe-api-url", "http://127.0.0.1:12111"}, "--stripe-api-url"},
		{"a CA without a TLS Redis", nil, []string{"serve", "--redis-url", "redis://127.0.0.1:1", "--redis-ca", "/nonexistent.pem"}, "--redis-ca (or TOLLGATE_REDIS_CA)"},
		{"a cap for no provider", nil, []string{"stdio", "--cap", "paypal=10.00"}, "--cap"},
		{"too many replicas to wait for", nil, []string{"serve", "--redis-wait-replicas", "17"}, "--redis-wait-replicas (or TOLLGATE_REDIS_WAIT_REPLICAS): 17 is out of range; use 0..16"},
		{"a wait past a second", []string{"TOLLGATE_REDIS_WAIT_TIMEOUT=2s"}, []string{"serve"}, "--redis-wait-timeout (or TOLLGATE_REDIS_WAIT_TIMEOUT): 2s is out of range; use 10ms..1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runBin(t, tc.env, tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not name %q", stderr, tc.want)
			}
		})
	}
}

func TestUnreachableRedisFailsClearly(t *testing.T) {
	_, stderr, code := runBin(t, nil, "serve", "--addr", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1")
	if code != exitRefused || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

// TestStdioBothEras runs the built binary as an MCP stdio server and lists
// and calls the catalog tools in both protocol eras.
func TestStdioBothEras(t *testing.T) {
	bin := testkit.Binary(t)
	for _, era := range testkit.Eras {
		t.Run(string(era), func(t *testing.T) {
			c := testkit.Stdio(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)}, testkit.ClientOptions{Era: era}, "stdio")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lt, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range lt.Tools {
				names = append(names, tool.Name)
			}
			if !strings.Contains(strings.Join(names, ","), "catalog_search") {
				t.Fatalf("tools: %v", names)
			}
			req := mcp.CallToolRequest{}
			req.Params.Name = "catalog_search"
			req.Params.Arguments = map[string]any{"query": "workers"}
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				t.Fatalf("catalog_search: %v %+v", err, res)
			}
		})
	}
}

// TestServeProcessHTTP starts `tollgate serve` and uses it over HTTP with the
// embedded sandbox Redis.
func TestServeProcessHTTP(t *testing.T) {
	p := testkit.Serve(t, testkit.Binary(t), nil)
	if !strings.Contains(p.Stderr(), "embedded") {
		t.Fatalf("serve did not print the embedded Redis address:\n%s", p.Stderr())
	}
	tok := testkit.TaskToken(t, p.URL, testkit.Grant{})
	for _, era := range testkit.Eras {
		c := testkit.HTTP(t, p.URL+"/mcp", testkit.ClientOptions{Era: era, Headers: testkit.Bearer(tok)})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req := mcp.CallToolRequest{}
		req.Params.Name = "catalog_get"
		req.Params.Arguments = map[string]any{"id": "cloudflare/registrar:domain.com"}
		res, err := c.CallTool(ctx, req)
		cancel()
		if err != nil || res.IsError {
			t.Fatalf("%s catalog_get: %v %+v", era, err, res)
		}
	}
}

// TestServeJSONLogHasNoSecrets: with --log-format json every line serve
// writes is one JSON object with time, level and msg; the tool call's line
// names its session and tool; no token appears in any line.
func TestServeJSONLogHasNoSecrets(t *testing.T) {
	p := testkit.Serve(t, testkit.Binary(t), nil, "--log-format", "json", "--log-level", "debug")
	user := testkit.DevLogin(t, p.URL, "alice@example.com")
	tok := testkit.TaskToken(t, p.URL, testkit.Grant{})
	c := testkit.HTTP(t, p.URL+"/mcp", testkit.ClientOptions{Era: testkit.Eras[0], Headers: testkit.Bearer(tok)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	// The tool call's line is written after the answer: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Stderr(), `"tool":"whoami"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sawCall := false
	for _, line := range strings.Split(p.Stderr(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %v\n%s", err, line)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line without %s: %s", k, line)
			}
		}
		if m["tool"] == "whoami" && m["session"] != nil {
			sawCall = true
		}
		for _, secret := range []string{tok, user, strings.Split(tok, ".")[2], strings.Split(user, ".")[2]} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line carries a token: %s", line)
			}
		}
	}
	if !sawCall {
		t.Fatalf("no JSON log line names the whoami call and its session:\n%s", p.Stderr())
	}
}
