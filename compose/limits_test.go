//go:build !nosandbox

package compose_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

// rpc posts one JSON-RPC message to /mcp as a legacy (2025-11-25) client.
func rpc(t *testing.T, base, tok, sid, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func initializeBody(name string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`, name)
}

// initialize opens a legacy MCP session and returns its id ("" when refused).
func initialize(t *testing.T, base, tok string) (string, *http.Response) {
	t.Helper()
	resp := rpc(t, base, tok, "", initializeBody("limits-test"))
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("Mcp-Session-Id"), resp
}

// readAudit returns principal's entries.
func readAudit(t *testing.T, trail *sessions.Audit, principal string) []sessions.Entry {
	t.Helper()
	var buf strings.Builder
	if _, err := trail.Export(context.Background(), &buf, sessions.ExportFilter{Principal: principal}); err != nil {
		t.Fatal(err)
	}
	var out []sessions.Entry
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e sessions.Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// TestMCPSessionsPerPrincipal: one principal opens at most
// --mcp-sessions-per-principal legacy sessions; one more initialize gets 429
// with Retry-After, another principal is unaffected, and closing a session
// frees its place.
func TestMCPSessionsPerPrincipal(t *testing.T) {
	a, ts := newAppWith(t, func(c *config.Config) { c.MCPSessionsPerPrincipal = 2 })
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "opener", Scope: "catalog:read"})
	var sids []string
	for range 2 {
		sid, resp := initialize(t, ts.URL, tok)
		if resp.StatusCode != http.StatusOK || sid == "" {
			t.Fatalf("initialize within the limit: %d, session %q", resp.StatusCode, sid)
		}
		sids = append(sids, sid)
	}
	sid, resp := initialize(t, ts.URL, tok)
	if resp.StatusCode != http.StatusTooManyRequests || sid != "" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third initialize: %d, session %q, Retry-After %q; want 429 with Retry-After and no session",
			resp.StatusCode, sid, resp.Header.Get("Retry-After"))
	}
	// The refusal is audited with who asked, like a refused tool call.
	waitAudit(t, a, aliceP, func(e sessions.Entry) bool {
		return e.Event == "mcp_session" && e.Decision == sessions.DecisionDeny && e.Code == "too_many_requests" &&
			e.Detail["limit"] == "mcp-sessions-per-principal" && len(e.Actors) == 1 && strings.Contains(e.Actors[0], "opener")
	})
	// The same human's other agent counts too; another human does not.
	other := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "second", Scope: "catalog:read"})
	if _, resp := initialize(t, ts.URL, other); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("another agent of the same human: %d, want 429", resp.StatusCode)
	}
	bob := testkit.TaskToken(t, ts.URL, testkit.Grant{Email: "bob@example.com", Agent: "opener", Scope: "catalog:read"})
	if sid, resp := initialize(t, ts.URL, bob); resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("bob refused because of alice's sessions: %d", resp.StatusCode)
	}
	// Closing a session (DELETE) frees its place.
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Mcp-Session-Id", sids[0])
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	dr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dr.Body.Close()
	if dr.StatusCode >= 300 {
		t.Fatalf("DELETE of an own session: %d", dr.StatusCode)
	}
	// ... and the closed session is gone, on every replica: its id is refused.
	if r := rpc(t, ts.URL, tok, sids[0], listBody); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a request on a DELETEd session: %d, want 404", r.StatusCode)
	}
	if sid, resp := initialize(t, ts.URL, tok); resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize after a DELETE: %d", resp.StatusCode)
	}
	// An initialize that carries an own session id still opens a new
	// session, so it is counted: the limit holds.
	if r := rpc(t, ts.URL, tok, sids[1], initializeBody("again")); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("initialize with an Mcp-Session-Id past the limit: %d, want 429", r.StatusCode)
	}
}

// TestRequestsInFlightPerSession: a task session with a stream open holds
// its one slot (--inflight-per-session 1); its next request gets 429 with
// Retry-After, a refused tool call is audited, and the slot comes back when
// the stream ends.
func TestRequestsInFlightPerSession(t *testing.T) {
	a, ts := newAppWith(t, func(c *config.Config) { c.InflightPerSession = 1 })
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "streamer", Scope: "catalog:read"})
	sid, resp := initialize(t, ts.URL, tok)
	if sid == "" {
		t.Fatalf("initialize: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", stream.StatusCode)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_search","arguments":{"query":"domain"}}}`
	r := rpc(t, ts.URL, tok, sid, call)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "too_many_requests") {
		t.Fatalf("a second request of the session: %d Retry-After %q %s; want 429 too_many_requests", r.StatusCode, r.Header.Get("Retry-After"), body)
	}
	es := readAudit(t, a.Trail(), aliceP)
	found := false
	for _, e := range es {
		if e.Tool == "catalog_search" && e.Code == "too_many_requests" && e.Decision == sessions.DecisionDeny && e.Detail["at"] == "http edge" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the refused tool call is not in the audit trail: %+v", es)
	}
	// The stream ends; the slot is free again.
	cancel()
	stream.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := rpc(t, ts.URL, tok, sid, call)
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stream ended: %d", r.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRepeatedRefusalsAreCounted: 50 identical refused calls make one
// audit entry at once and one counted entry when the window closes (here:
// at shutdown), not 50.
func TestRepeatedRefusalsAreCounted(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	a, ts := newAppOn(t, redisURL)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "prober", Scope: "catalog:read"})
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"dns_upsert","arguments":{"zone":"x.com"}}}`
	for range 50 {
		r := rpc(t, ts.URL, tok, "", call)
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("dns_upsert without dns:write: %d, want 403", r.StatusCode)
		}
	}
	count := func(es []sessions.Entry) (first, counted int, repeated string) {
		for _, e := range es {
			if e.Tool == "dns_upsert" && e.Code == "insufficient_scope" {
				if e.Detail["repeated"] != "" {
					counted++
					repeated = e.Detail["repeated"]
				} else {
					first++
				}
			}
		}
		return
	}
	if first, counted, _ := count(readAudit(t, a.Trail(), aliceP)); first != 1 || counted != 0 {
		t.Fatalf("while the window is open: %d entries and %d counts, want 1 and 0", first, counted)
	}
	ts.Close()
	a.Close()
	b, _ := newAppOn(t, redisURL)
	if first, counted, n := count(readAudit(t, b.Trail(), aliceP)); first != 1 || counted != 1 || n != "49" {
		t.Fatalf("after shutdown: %d entries, %d counts (repeated %q); want 1, 1 (49)", first, counted, n)
	}
	if res, err := b.Trail().Verify(context.Background(), nil); err != nil || !res.OK {
		t.Fatalf("audit verify after counting: %+v %v", res, err)
	}
}

// TestUnauthenticatedRequestsAreCounted: a request with no valid token has
// no identity to audit; it is counted.
func TestUnauthenticatedRequestsAreCounted(t *testing.T) {
	a, ts := newApp(t)
	for _, tok := range []string{"", "not-a-jwt", "eyJhbGciOiJub25lIn0.e30."} {
		r := rpc(t, ts.URL, tok, "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %d, want 401", tok, r.StatusCode)
		}
	}
	if n := a.Unauthenticated(); n != 3 {
		t.Fatalf("counted %d unauthenticated requests, want 3", n)
	}
}

// TestUnknownToolCallsAreAudited: calling a tool that does not exist is
// recorded (the probe has a trace), and a flood of such probes with ever
// new names is one entry, named as no tool, whose repeats are counted.
func TestUnknownToolCallsAreAudited(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	a, ts := newAppOn(t, redisURL)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "prober", Scope: "catalog:read"})
	for i := range 150 {
		r := rpc(t, ts.URL, tok, "", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"no_such_tool_%d","arguments":{}}}`, i))
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode >= 500 {
			t.Fatalf("unknown tool: %d", r.StatusCode)
		}
	}
	count := func(trail *sessions.Audit) (first, counted int, requested, repeated string) {
		for _, e := range readAudit(t, trail, aliceP) {
			if strings.HasPrefix(e.Tool, "no_such_tool_") {
				t.Fatalf("an entry names the made-up tool %q: made-up names must not multiply entries", e.Tool)
			}
			if e.Tool != "(unknown tool)" || e.Code != "not_found" || e.Decision != sessions.DecisionDeny {
				continue
			}
			if e.Detail["repeated"] != "" {
				counted++
				repeated = e.Detail["repeated"]
				continue
			}
			first++
			requested = e.Detail["requested"]
		}
		return
	}
	if first, _, requested, _ := count(a.Trail()); first != 1 || requested != "no_such_tool_0" {
		t.Fatalf("%d entries (requested %q) for 150 unknown tools, want 1 naming the first name asked for", first, requested)
	}
	ts.Close()
	a.Close()
	b, _ := newAppOn(t, redisURL)
	if first, counted, _, repeated := count(b.Trail()); first != 1 || counted != 1 || repeated != "149" {
		t.Fatalf("after shutdown: %d entries, %d counts (repeated %q); want 1, 1 (149)", first, counted, repeated)
	}
}
