//go:build !nosandbox

package compose_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestMetricsAfterAStory: a known sequence of calls leaves exact counter
// values on /metrics, and no principal or e-mail in any label.
func TestMetricsAfterAStory(t *testing.T) {
	_, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "counter", Scope: "catalog:read"})
	for range 2 {
		r := postMCP(t, ts.URL, "Bearer "+tok, metaCall("whoami"))
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("whoami: %d", r.StatusCode)
		}
	}
	for range 3 {
		r := postMCP(t, ts.URL, "Bearer "+tok, metaCall("dns_upsert"))
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("dns_upsert without dns:write: %d, want 403", r.StatusCode)
		}
	}
	r := postMCP(t, ts.URL, "Bearer not-a-token", listBody)
	_, _ = io.Copy(io.Discard, r.Body)

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`tollgate_tool_calls_total{code="",outcome="ok",tool="whoami"} 2`,
		`tollgate_refusals_total{code="insufficient_scope"} 3`,
		`tollgate_refusals_total{code="unauthenticated"} 1`,
		`tollgate_token_exchanges_total{mode="delegation",result="ok"} 1`,
		`tollgate_build_info{`,
		`tollgate_redis_errors_total 0`,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, secret := range []string{"alice", "example.com", "counter", tok} {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "tollgate_") && strings.Contains(line, secret) {
				t.Errorf("a metric line names %q: %s", secret, line)
			}
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "tollgate_") && !strings.Contains(line, "_bucket") {
				t.Log(line)
			}
		}
	}
}

// TestMetricsToken: with --metrics-token, /metrics asks for it.
func TestMetricsToken(t *testing.T) {
	const token = "0123456789abcdef0123"
	_, ts := newAppWith(t, func(c *config.Config) { c.MetricsToken = token })
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong-token-0123456789", 401}, {"Bearer " + token, 200}} {
		req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}

// metaCall is a 2026-07-28 tools/call of tool with no arguments.
func metaCall(tool string) string {
	return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + tool + `","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
}
