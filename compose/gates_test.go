//go:build !nosandbox

package compose_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

// human plays the person answering elicitations.
type human struct {
	action  mcp.ElicitationResponseAction
	content any
	asked   atomic.Int32
	last    atomic.Value // string: the message shown
}

func (h *human) Elicit(_ context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.asked.Add(1)
	h.last.Store(r.Params.Message)
	res := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: h.action}}
	if h.action == mcp.ElicitationResponseActionAccept {
		res.Content = h.content
		if res.Content == nil {
			res.Content = map[string]any{"approve": true}
		}
	}
	return res, nil
}

func gatedToken(t *testing.T, base string, domains ...string) string {
	return gatedTokenFor(t, base, "alice@example.com", domains...)
}

func gatedTokenFor(t *testing.T, base, email string, domains ...string) string {
	return testkit.TaskToken(t, base, testkit.Grant{Email: email, Scope: "domain:read domain:register spend:read", Details: resources(domains...)})
}

// TestPurchaseGateBothEras: a purchase above the threshold (.io, 50.00 USD)
// asks the human; accept registers, decline and cancel do nothing. Over
// HTTP in both protocol eras and in-process.
func TestPurchaseGateBothEras(t *testing.T) {
	a, ts := newApp(t)
	type conn struct {
		name string
		dial func(t *testing.T, tok string, h *human) *client.Client
	}
	conns := []conn{
		{"http modern", func(t *testing.T, tok string, h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Modern, Headers: testkit.Bearer(tok), Elicit: h})
		}},
		{"http legacy", func(t *testing.T, tok string, h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Legacy, Headers: testkit.Bearer(tok), Elicit: h})
		}},
		{"in-process", func(t *testing.T, tok string, h *human) *client.Client {
			a.Credentials = func(context.Context) (string, error) { return tok, nil }
			return testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{Elicit: h})
		}},
	}
	for i, cn := range conns {
		t.Run(cn.name, func(t *testing.T) {
			domain := []string{"gate-a.io", "gate-b.io", "gate-c.io"}[i]
			// One principal per connection, with their own Cloudflare
			// account: two .io purchases fill a cap.
			email := []string{"a@example.com", "b@example.com", "c@example.com"}[i]
			acct := a.LinkTestAccount(t, "user:"+email)
			tok := gatedTokenFor(t, ts.URL, email, domain)
			before := len(a.FakeCloudflare().Charges())
			for _, h := range []*human{{action: mcp.ElicitationResponseActionDecline}, {action: mcp.ElicitationResponseActionCancel}} {
				c := cn.dial(t, tok, h)
				res, err := call(t, c, "domain_register", map[string]any{"domain": domain})
				if err != nil {
					t.Fatal(err)
				}
				want := map[mcp.ElicitationResponseAction]string{"decline": "gate_declined", "cancel": "gate_cancelled"}[h.action]
				if code := errCode(t, res); code != want || h.asked.Load() != 1 {
					t.Fatalf("%s: code %q asked %d", h.action, code, h.asked.Load())
				}
			}
			if got := len(a.FakeCloudflare().Charges()); got != before {
				t.Fatal("a declined purchase was charged")
			}
			h := &human{action: mcp.ElicitationResponseActionAccept}
			c := cn.dial(t, tok, h)
			res, err := call(t, c, "domain_register", map[string]any{"domain": domain})
			if err != nil || res.IsError {
				t.Fatalf("accept: %v %v", err, res)
			}
			msg, _ := h.last.Load().(string)
			if !strings.Contains(msg, domain) || !strings.Contains(msg, "50.00 USD") || !strings.Contains(msg, "Month to date") {
				t.Fatalf("the purchase gate did not show item, price and month-to-date: %q", msg)
			}
			if got := a.FakeCloudflare().Charges(); len(got) != before+1 || got[before].Account != acct {
				t.Fatalf("charges %+v, want %d, the last in %s's account %s", got, before+1, email, acct)
			}
		})
	}
}

// mrtrCall sends one raw 2026-07-28 tools/call and returns the result.
func mrtrCall(t *testing.T, base, tok string, params map[string]any) map[string]any {
	t.Helper()
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw", "version": "0"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{"form": map[string]any{}}},
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
	resp := postMCP(t, base, "Bearer "+tok, string(body))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var out struct {
		Result map[string]any `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Result
}

func rawCode(r map[string]any) string {
	sc, _ := r["structuredContent"].(map[string]any)
	e, _ := sc["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestForgedAndReplayedAnswers: only a sealed, single-use, bound
// requestState issued by the server proves a human answered.
func TestForgedAndReplayedAnswers(t *testing.T) {
	a, ts := newApp(t)
	var domains []string
	for i := range 8 {
		domains = append(domains, fmt.Sprintf("forge-%d.io", i))
	}
	a.LinkTestAccount(t, alicePrincipal)
	tok := gatedToken(t, ts.URL, domains...)
	other := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "other", Scope: "domain:register", Details: resources(domains...)})
	accept := map[string]any{"purchase_0": map[string]any{"action": "accept", "content": map[string]any{"approve": true}}}
	// ask returns a fresh server-issued state for registering domain.
	ask := func(domain string) string {
		r := mrtrCall(t, ts.URL, tok, map[string]any{"name": "domain_register", "arguments": map[string]any{"domain": domain}})
		state, _ := r["requestState"].(string)
		if r["resultType"] != "input_required" || state == "" {
			t.Fatalf("first call: %v", r)
		}
		return state
	}
	call := func(tk, domain, state string, responses map[string]any) map[string]any {
		p := map[string]any{"name": "domain_register", "arguments": map[string]any{"domain": domain}, "inputResponses": responses}
		if state != "" {
			p["requestState"] = state
		}
		return mrtrCall(t, ts.URL, tk, p)
	}
	t.Run("inputResponses in the first call", func(t *testing.T) {
		if r := call(tok, domains[0], "", accept); rawCode(r) != "state_invalid" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("truncated state", func(t *testing.T) {
		st := ask(domains[1])
		if r := call(tok, domains[1], st[:len(st)/2], accept); rawCode(r) != "state_invalid" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		st := ask(domains[2])
		if r := call(tok, domains[2], strings.Repeat("A", len(st)), accept); rawCode(r) != "state_invalid" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("changed arguments", func(t *testing.T) {
		st := ask(domains[3])
		if r := call(tok, domains[4], st, accept); rawCode(r) != "state_mismatch" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("state from another session", func(t *testing.T) {
		st := ask(domains[5])
		if r := call(other, domains[5], st, accept); rawCode(r) != "state_mismatch" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("accept content not matching the form", func(t *testing.T) {
		st := ask(domains[6])
		bad := map[string]any{"purchase_0": map[string]any{"action": "accept", "content": map[string]any{"approve": "yes"}}}
		if r := call(tok, domains[6], st, bad); rawCode(r) != "gate_declined" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("replayed state", func(t *testing.T) {
		// The human declined; the agent replays the state with an accept.
		st := ask(domains[7])
		decline := map[string]any{"purchase_0": map[string]any{"action": "decline"}}
		if r := call(tok, domains[7], st, decline); rawCode(r) != "gate_declined" {
			t.Fatalf("the human's answer: %v", r)
		}
		if r := call(tok, domains[7], st, accept); rawCode(r) != "state_replayed" {
			t.Fatalf("replay: %v", r)
		}
	})
	if n := len(a.FakeCloudflare().Charges()); n != 0 {
		t.Fatalf("%d charges from forged or replayed answers", n)
	}
}

// TestApprovalFallback: a client without elicitation gets approval_required;
// once a human approves on the page (here: through the store, as the CLI
// does), the retry with approval_id goes through; the id is single-use.
func TestApprovalFallback(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	tok := gatedToken(t, ts.URL, "approve-me.io", "approve-too.io")
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	res, err := call(t, c, "domain_register", map[string]any{"domain": "approve-me.io"})
	if err != nil || errCode(t, res) != "approval_required" {
		t.Fatalf("no elicitation: %v %v", err, res)
	}
	d := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)
	id := d["approval_id"].(string)
	if !strings.HasSuffix(d["approval_url"].(string), "/approvals/"+id) {
		t.Fatalf("details %v", d)
	}
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "approve-me.io", "approval_id": id})
	if code := errCode(t, res); code != "approval_pending" {
		t.Fatalf("before approval: %q", code)
	}
	if _, err := a.Approvals().Decide(context.Background(), id, "user:mallory@example.com", true, "mallory"); err == nil {
		t.Fatal("another principal approved")
	}
	if _, err := a.Approvals().Decide(context.Background(), id, "user:alice@example.com", true, "alice"); err != nil {
		t.Fatal(err)
	}
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "approve-me.io", "approval_id": id})
	if res.IsError {
		t.Fatalf("after approval: %v", structured(t, res))
	}
	// The same retry replays the stored result; nothing is charged twice.
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "approve-me.io", "approval_id": id})
	if res.IsError || len(a.FakeCloudflare().Charges()) != 1 {
		t.Fatalf("replay: %v, charges %d", structured(t, res), len(a.FakeCloudflare().Charges()))
	}
	// An approval is bound to its call: it does not buy another domain.
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "approve-too.io", "approval_id": id})
	if code := errCode(t, res); code != "approval_mismatch" && code != "approval_used" {
		t.Fatalf("approval for another domain: %q", code)
	}
}

// TestGatesAreAudited: what the human was asked, and the answer, are in
// the audit trail.
func TestGatesAreAudited(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	tok := gatedToken(t, ts.URL, "audited.io")
	h := &human{action: mcp.ElicitationResponseActionDecline}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	if res, _ := call(t, c, "domain_register", map[string]any{"domain": "audited.io"}); errCode(t, res) != "gate_declined" {
		t.Fatal("not declined")
	}
	var buf strings.Builder
	if _, err := a.Trail().Export(context.Background(), &buf, sessions.ExportFilter{Principal: "user:alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"reason":"asked"`) || !strings.Contains(out, `"code":"purchase"`) || !strings.Contains(out, "50.00 USD") || !strings.Contains(out, `"decision":"deny"`) {
		t.Fatalf("gate entries missing from the trail:\n%s", out)
	}
}
