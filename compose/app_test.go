//go:build !nosandbox

package compose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compose/composetest"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// alicePrincipal is the principal of testkit.TaskToken's default grant.
const alicePrincipal = "user:alice@example.com"

// newApp builds a sandbox App on the test's own Redis database and serves it
// on a loopback listener whose address matches the configured public URL.
func newApp(t *testing.T) (*compose.App, *httptest.Server) {
	t.Helper()
	return newAppOn(t, testkit.RedisURL(t))
}

// newAppOn is newApp on a given Redis.
func newAppOn(t *testing.T, redisURL string) (*compose.App, *httptest.Server) {
	t.Helper()
	return composetest.Serve(t, redisURL, nil)
}

func TestHealthz(t *testing.T) {
	_, ts := newApp(t)
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body["status"] != "ok" || body["mode"] != "sandbox" {
		t.Fatalf("healthz = %d %v", resp.StatusCode, body)
	}
}

// TestReadyz: /readyz is ready while Redis answers and the signing keys
// are published; with Redis stopped it is 503 and says redis is
// unreachable (no address), while /healthz, liveness, stays 200.
func TestReadyz(t *testing.T) {
	srv, err := testkit.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	_, ts := newAppOn(t, srv.URL)
	get := func(path string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := get("/readyz"); code != 200 || body["status"] != "ready" || body["redis"] != "ok" || body["keys"] != "published" {
		t.Fatalf("readyz with Redis up = %d %v", code, body)
	}
	srv.Stop()
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["redis"] != "unreachable" {
		t.Fatalf("readyz with Redis stopped = %d %v, want 503 redis unreachable", code, body)
	}
	for k, v := range body {
		if strings.Contains(v, "127.0.0.1") || strings.Contains(v, srv.Addr) {
			t.Fatalf("readyz %s = %q names an address", k, v)
		}
	}
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("healthz with Redis stopped = %d %v, want 200 (liveness only)", code, body)
	}
}

func TestCatalogHTTP(t *testing.T) {
	_, ts := newApp(t)
	tests := []struct {
		name       string
		query      string
		wantStatus int
		check      func(t *testing.T, services []map[string]any)
	}{
		{"search domain returns registrar entries with minor-unit prices", "?q=domain", 200, func(t *testing.T, ss []map[string]any) {
			if len(ss) < 12 {
				t.Fatalf("want at least 12 domain services, got %d", len(ss))
			}
			for _, s := range ss {
				p, _ := s["pricing"].(map[string]any)
				amt, isNum := p["amount_minor"].(float64)
				if !isNum || amt != float64(int64(amt)) || p["currency"] == "" {
					t.Fatalf("service %v: pricing %v is not integer minor units", s["id"], p)
				}
			}
		}},
		{"provider filter keeps only stripe", "?provider=stripe", 200, func(t *testing.T, ss []map[string]any) {
			if len(ss) < 2 {
				t.Fatalf("want at least 2 stripe plans, got %d", len(ss))
			}
			for _, s := range ss {
				if s["provider"] != "stripe" {
					t.Fatalf("provider filter leaked %v", s["id"])
				}
			}
		}},
		{"unknown provider is a bad request", "?provider=aws", 400, nil},
		{"no match is an empty list, not null", "?q=zzzz-nothing-matches", 200, func(t *testing.T, ss []map[string]any) {
			if ss == nil || len(ss) != 0 {
				t.Fatalf("want empty list, got %v", ss)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(ts.URL + "/v1/catalog" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.check == nil {
				return
			}
			var body struct {
				Services   []map[string]any `json:"services"`
				PricesAsOf string           `json:"prices_as_of"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.PricesAsOf == "" {
				t.Fatal("prices_as_of missing")
			}
			tc.check(t, body.Services)
		})
	}
}

func TestHTTPGuards(t *testing.T) {
	a, ts := newApp(t)
	big := strings.Repeat("x", int(a.Cfg.MaxBodyBytes)+1)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read"})
	tests := []struct {
		name       string
		method     string
		path       string
		body       io.Reader
		header     map[string]string
		chunked    bool
		wantStatus int
		wantCode   string
	}{
		{"oversized body is 413", "POST", "/mcp", strings.NewReader(big), map[string]string{"Authorization": "Bearer " + tok}, false, 413, "request_too_large"},
		{"oversized chunked body is 413", "POST", "/mcp", io.MultiReader(strings.NewReader(big)), map[string]string{"Authorization": "Bearer " + tok}, true, 413, "request_too_large"},
		// An anonymous body is never read: the token is checked first.
		{"oversized body without a token is 401", "POST", "/mcp", strings.NewReader(big), nil, false, 401, "unauthorized"},
		// Anything but /mcp is open to anyone, and gets a small limit.
		{"oversized token request is 413", "POST", "/oauth/token", strings.NewReader(strings.Repeat("x", compose.AnonymousBodyLimit+1)), nil, false, 413, "request_too_large"},
		{"foreign Origin is refused (DNS rebinding)", "POST", "/mcp", strings.NewReader(`{}`), map[string]string{"Origin": "http://evil.example"}, false, 403, "origin_not_allowed"},
		{"foreign Host is refused (DNS rebinding)", "GET", "/healthz", nil, map[string]string{"Host": "evil.example"}, false, 403, "host_not_allowed"},
		{"token in query string is refused", "POST", "/mcp?access_token=abc", strings.NewReader(`{}`), nil, false, 400, "invalid_request"},
		{"unknown path is a JSON 404", "GET", "/nope", nil, nil, false, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, tc.body)
			if tc.chunked {
				req.ContentLength = -1
			}
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&p)
			if resp.StatusCode != tc.wantStatus || p.Error != tc.wantCode {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, p.Error, tc.wantStatus, tc.wantCode)
			}
		})
	}
	// The server keeps serving after every refusal.
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server stopped serving after bad input: %v", err)
	}
	resp.Body.Close()
}

func TestMalformedJSONRPC(t *testing.T) {
	_, ts := newApp(t)
	req, _ := http.NewRequest("POST", ts.URL+"/mcp", bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+testkit.TaskToken(t, ts.URL, testkit.Grant{}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(b, []byte(`-32700`)) {
		t.Fatalf("malformed JSON-RPC: want parse error -32700, got %d %s", resp.StatusCode, b)
	}
}

// TestCatalogToolsAllTransports lists and calls the catalog tools in-process
// and over HTTP in both protocol eras.
func TestCatalogToolsAllTransports(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	for _, era := range testkit.Eras {
		t.Run("in-process/"+string(era), func(t *testing.T) {
			exerciseCatalogTools(t, testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{Era: era}))
		})
		t.Run("http/"+string(era), func(t *testing.T) {
			exerciseCatalogTools(t, testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: era, Headers: testkit.Bearer(tok)}))
		})
	}
}

type caller interface {
	ListTools(context.Context, mcp.ListToolsRequest) (*mcp.ListToolsResult, error)
	CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
}

func call(t *testing.T, c caller, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structured content is not an object: %s", b)
	}
	return m
}

func exerciseCatalogTools(t *testing.T, c caller) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lt, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]mcp.Tool{}
	for _, tool := range lt.Tools {
		byName[tool.Name] = tool
	}
	for _, name := range []string{"catalog_search", "catalog_get"} {
		tool, ok := byName[name]
		if !ok {
			t.Fatalf("%s not listed", name)
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.DestructiveHint == nil || *a.DestructiveHint {
			t.Fatalf("%s annotations are not read-only and non-destructive: %+v", name, a)
		}
	}

	res, err := call(t, c, "catalog_search", map[string]any{"query": "domain"})
	if err != nil || res.IsError {
		t.Fatalf("catalog_search: %v %+v", err, res)
	}
	sc := structured(t, res)
	services, _ := sc["services"].([]any)
	if len(services) < 12 {
		t.Fatalf("catalog_search domain: %d services", len(services))
	}
	first := services[0].(map[string]any)
	id, _ := first["id"].(string)

	res, err = call(t, c, "catalog_get", map[string]any{"id": id})
	if err != nil || res.IsError {
		t.Fatalf("catalog_get %s: %v %+v", id, err, res)
	}
	if got := structured(t, res)["id"]; got != id {
		t.Fatalf("catalog_get returned %v, want %s", got, id)
	}

	bad := []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{"unknown id", "catalog_get", map[string]any{"id": "cloudflare/nothing"}, "not_found"},
		{"missing id", "catalog_get", map[string]any{}, ""},
		{"unknown field", "catalog_search", map[string]any{"query": "x", "evil": true}, ""},
		{"wrong type", "catalog_search", map[string]any{"query": 12}, ""},
	}
	for _, b := range bad {
		res, err := call(t, c, b.tool, b.args)
		if err != nil {
			t.Fatalf("%s: protocol error %v, want a tool error", b.name, err)
		}
		if !res.IsError {
			t.Fatalf("%s: want isError, got %+v", b.name, res)
		}
		if b.want != "" {
			e, _ := structured(t, res)["error"].(map[string]any)
			if e["code"] != b.want {
				t.Fatalf("%s: code %v, want %s", b.name, e["code"], b.want)
			}
		}
	}

	if _, err := call(t, c, "no_such_tool", nil); err == nil {
		t.Fatal("unknown tool: want a JSON-RPC error")
	}
}

// TestServerDoesNotAdvertiseElicitation: elicitation is a client
// capability (the client answers); a server declaring it misleads clients
// in both eras.
func TestServerDoesNotAdvertiseElicitation(t *testing.T) {
	_, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{})
	for _, era := range testkit.Eras {
		c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: era, Headers: testkit.Bearer(tok)})
		caps := c.GetServerCapabilities()
		if caps.Elicitation != nil {
			t.Errorf("%s: the server advertises elicitation: %+v", era, caps)
		}
		if caps.Tools == nil {
			t.Errorf("%s: no tools capability read (the check above would pass vacuously): %+v", era, caps)
		}
	}
}
