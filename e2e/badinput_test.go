package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestBadInput: malformed requests at /mcp from a holder of a valid task
// token, each answered with a clear 4xx or a tool error, never a 5xx, and
// nothing charged at the provider.
func TestBadInput(t *testing.T) {
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	acct := testkit.LinkAccount(t, srv.URL, "alice@example.com")
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "domain:read domain:register spend:read",
		Details: resourcesJSON([]string{"bad-input.com"})})
	hc := &http.Client{Timeout: 20 * time.Second}

	// An MCP session to send tool calls on.
	sid := func() string {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bad","version":"0"}}}`
		resp := post(t, hc, srv.URL, tok, "", "application/json", body, nil)
		defer resp.Body.Close()
		return resp.Header.Get("Mcp-Session-Id")
	}()
	call := func(args string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"domain_register","arguments":` + args + `}}`
	}
	nested := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	for _, tc := range []struct {
		name, ctype, body string
		header            map[string]string
		tool              bool // answered 200 with a tool error (isError) or a JSON-RPC error (an invalid UTF-8 method name is "method not found")
	}{
		{name: "oversize body", ctype: "application/json", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`},
		{name: "deeply nested JSON", ctype: "application/json", body: nested},
		{name: "not JSON", ctype: "application/json", body: `{"jsonrpc":"2.0",`},
		{name: "wrong content type", ctype: "text/plain", body: call(`{"domain":"bad-input.com"}`)},
		{name: "invalid UTF-8", ctype: "application/json", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}", tool: true},
		{name: "huge header", ctype: "application/json", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, header: map[string]string{"X-Big": strings.Repeat("b", 128<<10)}},
		{name: "batch", ctype: "application/json", body: `[` + call(`{"domain":"bad-input.com"}`) + `,` + call(`{"domain":"bad-input.com"}`) + `]`},
		{name: "wrong argument type", ctype: "application/json", body: call(`{"domain":42}`), tool: true},
		{name: "negative years", ctype: "application/json", body: call(`{"domain":"bad-input.com","years":-1}`), tool: true},
		{name: "huge domain string", ctype: "application/json", body: call(`{"domain":"` + strings.Repeat("x", 100000) + `.com"}`), tool: true},
		{name: "unicode look-alike domain", ctype: "application/json", body: call(`{"domain":"bаd-input.com"}`), tool: true},
		{name: "domain not named by the token", ctype: "application/json", body: call(`{"domain":"other.com"}`), tool: true},
		{name: "unknown tool", ctype: "application/json", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`, tool: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, hc, srv.URL, tok, sid, tc.ctype, tc.body, tc.header)
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode >= 500 {
				t.Fatalf("%d: %s", resp.StatusCode, body)
			}
			if !tc.tool {
				if resp.StatusCode < 400 {
					t.Fatalf("want a 4xx, got %d: %s", resp.StatusCode, body)
				}
				return
			}
			// A tool call answered: a tool error or a JSON-RPC error, with a
			// message that says what was wrong.
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("want 200 with an error result, got %d: %s", resp.StatusCode, body)
			}
			s := string(body)
			if !strings.Contains(s, `"isError":true`) && !strings.Contains(s, `"error":{`) {
				t.Fatalf("not an error: %s", s)
			}
		})
	}
	if n, total := fixtureCharges(t, srv.URL, acct); n != 0 {
		t.Fatalf("bad input charged %d registrations (%d)", n, total)
	}
}

func post(t *testing.T, hc *http.Client, base, tok, sid, ctype, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/mcp", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A server may close the connection on a header it will not read;
		// that is a refusal too, but say so.
		t.Fatalf("%s: %v", fmt.Sprint(len(body)), err)
	}
	return resp
}
