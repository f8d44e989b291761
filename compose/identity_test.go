//go:build !nosandbox

package compose_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func postMCP(t *testing.T, base, auth, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	// A 2026-07-28 request: stateless, its method in a header.
	var m struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", m.Method)
	if m.Params.Name != "" {
		req.Header.Set("Mcp-Name", m.Params.Name)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const listBody = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}}}`

func callBody(tool string) string {
	return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

// TestMCPRequiresAToken: the HTTP edge of /mcp (RFC 6750 §3, RFC 9728 §5.1).
func TestMCPRequiresAToken(t *testing.T) {
	_, ts := newApp(t)
	catalogOnly := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read"})
	spendOnly := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "spend:read"})
	tests := []struct {
		name       string
		auth, body string
		status     int
		challenge  []string // substrings of WWW-Authenticate
	}{
		{"no token", "", listBody, 401, []string{`resource_metadata="` + ts.URL + `/.well-known/oauth-protected-resource/mcp"`, `scope="catalog:read"`}},
		{"garbage token", "Bearer not-a-token", listBody, 401, []string{`error="invalid_token"`, "resource_metadata="}},
		{"basic scheme", "Basic YWxpY2U6cHc=", listBody, 401, []string{"resource_metadata="}},
		{"dev user token presented as access token", "Bearer " + testkit.DevLogin(t, ts.URL, "alice@example.com"), listBody, 401, []string{`error="invalid_token"`}},
		{"attestation presented as access token", "Bearer " + testkit.DevAgentToken(t, ts.URL, "a"), listBody, 401, []string{`error="invalid_token"`}},
		{"token lacking the tool's scope", "Bearer " + spendOnly, callBody("catalog_search"), 403, []string{`error="insufficient_scope"`, `scope="catalog:read"`}},
		{"token with the tool's scope", "Bearer " + catalogOnly, listBody, 200, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := postMCP(t, ts.URL, tc.auth, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), `"catalog_search"`) {
					t.Fatalf("tools/list answer lacks catalog_search: %s", b)
				}
			}
			h := resp.Header.Get("WWW-Authenticate")
			for _, want := range tc.challenge {
				if !strings.Contains(h, want) {
					t.Fatalf("WWW-Authenticate %q lacks %q", h, want)
				}
			}
		})
	}

	t.Run("resource metadata names the resource and this issuer", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/.well-known/oauth-protected-resource/mcp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct {
			Resource string   `json:"resource"`
			AS       []string `json:"authorization_servers"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if m.Resource != ts.URL+"/mcp" || len(m.AS) != 1 || m.AS[0] != ts.URL {
			t.Fatalf("metadata %+v", m)
		}
	})
	t.Run("authorization server metadata", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if m["issuer"] != ts.URL || m["token_endpoint"] != ts.URL+"/oauth/token" || m["jwks_uri"] != ts.URL+"/.well-known/jwks.json" {
			t.Fatalf("metadata %v", m)
		}
		// Like the resource metadata: public, readable cross-origin.
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Fatalf("Access-Control-Allow-Origin %q, want *", got)
		}
		// The token endpoint offers only "none": no JWT client auth, so no
		// signing algorithms for it (RFC 8414 §2).
		if _, ok := m["token_endpoint_auth_signing_alg_values_supported"]; ok {
			t.Fatalf("metadata lists signing algorithms for an auth method it does not offer: %v", m)
		}
	})
	t.Run("jwks publishes Ed25519 keys only", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&set)
		if len(set.Keys) == 0 {
			t.Fatal("no keys")
		}
		for _, k := range set.Keys {
			if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["d"] != nil {
				t.Fatalf("key %v", k)
			}
		}
	})
}

func whoami(t *testing.T, c *client.Client) (map[string]any, *mcp.CallToolResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return structured(t, res), res
}

func errCode(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if !res.IsError {
		return ""
	}
	e, _ := structured(t, res)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestRevokeStopsTheSubtreeOnTheNextCall: a sub-agent's very next call
// fails once its parent session is revoked, over HTTP in both eras and
// in-process (the stdio path of the guard).
func TestRevokeStopsTheSubtreeOnTheNextCall(t *testing.T) {
	a, ts := newApp(t)
	parent := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "planner", Scope: "catalog:read spend:read"})
	child := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "deployer", Subject: parent, Scope: "catalog:read"})
	a.Credentials = func(context.Context) (string, error) { return child, nil }

	clients := map[string]*client.Client{
		"http modern": testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Modern, Headers: testkit.Bearer(child)}),
		"http legacy": testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Legacy, Headers: testkit.Bearer(child)}),
		"in-process":  testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{}),
	}
	for name, c := range clients {
		who, res := whoami(t, c)
		if res.IsError {
			t.Fatalf("%s: whoami refused: %+v", name, who)
		}
		actors, _ := who["actors"].([]any)
		if who["principal"] != "user:alice@example.com" || len(actors) != 2 ||
			actors[0] != "spiffe://tollgate.sandbox/agent/deployer" || actors[1] != "spiffe://tollgate.sandbox/agent/planner" {
			t.Fatalf("%s: whoami %v", name, who)
		}
	}

	// RFC 7009: the parent's holder ends the task.
	form := url.Values{"token": {parent}}
	resp, err := http.PostForm(ts.URL+"/oauth/revoke", form)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()

	for name, c := range clients {
		_, res := whoami(t, c)
		if code := errCode(t, res); code != "session_revoked" {
			t.Fatalf("%s: the sub-agent's next call after the parent's revoke: code %q, want session_revoked", name, code)
		}
	}
	if resp := postMCP(t, ts.URL, "Bearer "+child, listBody); resp.StatusCode != 401 {
		t.Fatalf("tools/list with a revoked session: %d, want 401", resp.StatusCode)
	}

	// RFC 7662: introspection says inactive after the revoke.
	fresh := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "auditor", Scope: "catalog:read"})
	if got := introspect(t, ts.URL, fresh, child); got["active"] != false {
		t.Fatalf("introspect revoked child: %v", got)
	}
	if got := introspect(t, ts.URL, fresh, fresh); got["active"] != true || got["sid"] == nil || got["act"] == nil {
		t.Fatalf("introspect live token: %v", got)
	}
	other := testkit.TaskToken(t, ts.URL, testkit.Grant{Email: "mallory@example.com", Agent: "m", Scope: "catalog:read"})
	if got := introspect(t, ts.URL, other, fresh); got["active"] != false {
		t.Fatalf("another principal introspected alice's token: %v", got)
	}
	// RFC 7662 §2.2: a revoked token asking about itself, or about another
	// token, learns "active": false, not an authentication error.
	if got := introspect(t, ts.URL, child, child); len(got) != 1 || got["active"] != false {
		t.Fatalf("revoked token introspecting itself: %v", got)
	}
	if got := introspect(t, ts.URL, child, fresh); len(got) != 1 || got["active"] != false {
		t.Fatalf("revoked token introspecting a live one: %v", got)
	}
	// A caller with no genuine token of its own is still refused.
	if got := introspect(t, ts.URL, "not-a-token", fresh); got["error"] != "invalid_client" {
		t.Fatalf("forged caller: %v", got)
	}
	if got := introspect(t, ts.URL, fresh[:len(fresh)-4]+"AAAA", fresh); got["error"] != "invalid_client" {
		t.Fatalf("caller with a bad signature: %v", got)
	}
}

func introspect(t *testing.T, base, caller, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+caller)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// TestInsufficientScopeIsAToolErrorOffHTTP: without an HTTP edge (stdio,
// in-process) the guard refuses with a tool error naming the scopes.
func TestInsufficientScopeIsAToolErrorOffHTTP(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "spend:read"})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
	res, err := call(t, c, "catalog_search", map[string]any{"query": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if code := errCode(t, res); code != "insufficient_scope" {
		t.Fatalf("code %q", code)
	}
	msg := structured(t, res)["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "catalog:read") {
		t.Fatalf("message does not name the scope: %q", msg)
	}
	a.Credentials = func(context.Context) (string, error) { return "garbage", nil }
	res, _ = call(t, c, "catalog_search", map[string]any{"query": "x"})
	if code := errCode(t, res); code != "unauthenticated" {
		t.Fatalf("garbage token: code %q", code)
	}
}

func TestTokenEndpointErrorsAreRFC6749(t *testing.T) {
	_, ts := newApp(t)
	tests := []struct {
		name, method, ctype, body, query string
		status                           int
		code                             string
	}{
		{"GET", "GET", "", "", "", 405, "invalid_request"},
		{"JSON body", "POST", "application/json", `{}`, "", 400, "invalid_request"},
		{"parameters in the query string", "POST", "application/x-www-form-urlencoded", "", "?grant_type=x", 400, "invalid_request"},
		{"malformed form", "POST", "application/x-www-form-urlencoded", "%zz", "", 400, "invalid_request"},
		{"missing subject", "POST", "application/x-www-form-urlencoded", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange", "", 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+"/oauth/token"+tc.query, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&m)
			if resp.StatusCode != tc.status || m["error"] != tc.code || m["error_description"] == "" {
				t.Fatalf("got %d %v", resp.StatusCode, m)
			}
		})
	}
}

// TestDevEndpointsOnlyInSandbox: production has no dev IdP.
func TestDevEndpointsOnlyInSandboxOnLoopback(t *testing.T) {
	_, ts := newApp(t)
	resp, err := http.PostForm(ts.URL+"/dev/login", url.Values{"email": {"not an email"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad email: %d", resp.StatusCode)
	}
	// Through a tunnel or proxy on this machine the connection is still
	// from loopback: forwarded requests get no identities.
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		req, _ := http.NewRequest("POST", ts.URL+"/dev/login", strings.NewReader("email=alice%40example.com"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(h, "203.0.113.7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("dev login with %s: %d, want 404", h, resp.StatusCode)
		}
	}
}

// TestRedisDownFailsClosed: with Redis gone the guard cannot prove the
// session is live, so no tool runs.
func TestRedisDownFailsClosed(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read"})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
	if _, res := whoami(t, c); res.IsError {
		t.Fatal("whoami refused before the outage")
	}
	a.Redis.Client.Close()
	_, res := whoami(t, c)
	if code := errCode(t, res); code != "unavailable" {
		t.Fatalf("code %q, want unavailable", code)
	}
	if resp := postMCP(t, ts.URL, "Bearer "+tok, listBody); resp.StatusCode != 503 {
		t.Fatalf("tools/list with Redis down: %d", resp.StatusCode)
	}
}

// TestLegacySessionBelongsToItsPrincipal: a 2025-11-25 MCP session id is
// bound to the principal that opened it; another principal's token cannot
// use it (its stream and its pending elicitations).
func TestLegacySessionBelongsToItsPrincipal(t *testing.T) {
	_, ts := newApp(t)
	alice := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read"})
	mallory := testkit.TaskToken(t, ts.URL, testkit.Grant{Email: "mallory@example.com", Agent: "m", Scope: "catalog:read"})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Legacy, Headers: testkit.Bearer(alice)})
	sid := c.GetSessionId()
	if sid == "" {
		t.Fatal("no legacy session id")
	}
	for name, tok := range map[string]string{"owner": alice, "another principal": mallory} {
		req, _ := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]int{"owner": 200, "another principal": 404}[name]
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}
