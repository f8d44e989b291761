//go:build !nosandbox

package compose_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestCapRaiseGate: a purchase the month's cap cannot take asks the human
// to raise that cap, for this month only, by just enough. Declined or
// cancelled: cap_exceeded, nothing charged or changed. Accepted: the cap
// is raised (audited, by whom) and the purchase goes through under the
// same hold rules. Past --cap-max nobody is asked. Without elicitation the
// raise is an approval a human decides on the approvals page.
func TestCapRaiseGate(t *testing.T) {
	a, ts := newApp(t) // cap 100.00, --cap-max 500.00, .io costs 50.00
	const email = "raise@example.com"
	principal := "user:" + email
	a.LinkTestAccount(t, principal)
	dial := func(domain string, h *recHuman) *client.Client {
		tok := gatedTokenFor(t, ts.URL, email, domain)
		return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	}
	buy := func(domain string, h *recHuman) *mcp.CallToolResult {
		t.Helper()
		res, err := call(t, dial(domain, h), "domain_register", map[string]any{"domain": domain})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Two .io registrations fill the cap; neither asks for a raise.
	for _, d := range []string{"fill-1.io", "fill-2.io"} {
		h := &recHuman{action: mcp.ElicitationResponseActionAccept}
		if res := buy(d, h); res.IsError {
			t.Fatalf("%s: %v", d, res)
		}
		if msgs := h.shown(); strings.Contains(msgs, "Raise the monthly cap") {
			t.Fatalf("%s fits the cap but a raise was asked: %q", d, msgs)
		}
	}
	charges := len(a.FakeCloudflare().Charges())
	for _, action := range []mcp.ElicitationResponseAction{mcp.ElicitationResponseActionDecline, mcp.ElicitationResponseActionCancel} {
		h := &recHuman{action: action}
		res := buy("raise-1.io", h)
		if code := errCode(t, res); code != "cap_exceeded" {
			t.Fatalf("%s: code %q, want cap_exceeded", action, code)
		}
		if msgs := h.shown(); !strings.Contains(msgs, "from 100.00 USD to 150.00 USD") {
			t.Fatalf("%s: the gate did not show the cap and the new cap: %q", action, msgs)
		}
	}
	if got := len(a.FakeCloudflare().Charges()); got != charges {
		t.Fatal("a purchase whose cap raise was declined was charged")
	}
	h := &recHuman{action: mcp.ElicitationResponseActionAccept}
	if res := buy("raise-1.io", h); res.IsError {
		t.Fatalf("accepted raise: %v", res)
	}
	if got := len(a.FakeCloudflare().Charges()); got != charges+1 {
		t.Fatalf("charges %d, want %d", got, charges+1)
	}
	raised := 0
	for _, e := range readAudit(t, a.Trail(), principal) {
		if e.Event == "cap_raise" {
			raised++
			if e.Detail["from"] != "100.00 USD" || e.Detail["to"] != "150.00 USD" || e.Detail["by"] != "elicitation" || e.Tool != "domain_register" {
				t.Fatalf("cap_raise entry %+v", e)
			}
		}
	}
	if raised != 1 {
		t.Fatalf("%d cap_raise entries, want 1", raised)
	}
	// The raise is for this month only, and by just enough: the next .io
	// asks again.
	h = &recHuman{action: mcp.ElicitationResponseActionDecline}
	if code := errCode(t, buy("raise-2.io", h)); code != "cap_exceeded" || h.asked.Load() == 0 {
		t.Fatalf("after the raise: code %q, asked %d", code, h.asked.Load())
	}
	// A client without elicitation: a cap_raise approval for a human, and
	// a denial is cap_exceeded with nothing changed.
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(gatedTokenFor(t, ts.URL, email, "raise-2.io"))})
	res, err := call(t, c, "domain_register", map[string]any{"domain": "raise-2.io"})
	if err != nil || errCode(t, res) != "approval_required" {
		t.Fatalf("no elicitation: %v %v", err, res)
	}
	id := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	ap, err := a.Approvals().Get(context.Background(), id)
	if err != nil || ap.Kind != "cap_raise" || ap.Fields["new_cap"] != "200.00 USD" {
		t.Fatalf("approval %+v %v, want a cap_raise to 200.00 USD", ap, err)
	}
	if _, err := a.Approvals().Decide(context.Background(), id, principal, false, "raise"); err != nil {
		t.Fatal(err)
	}
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "raise-2.io", "approval_id": id})
	if code := errCode(t, res); code != "cap_exceeded" || len(a.FakeCloudflare().Charges()) != charges+1 {
		t.Fatalf("denied raise: code %q, charges %d", code, len(a.FakeCloudflare().Charges()))
	}
}

// TestCapRaiseStopsAtCapMax: past the operator's ceiling nobody is asked;
// the purchase is refused with cap_exceeded, nothing charged.
func TestCapRaiseStopsAtCapMax(t *testing.T) {
	a, ts := newAppWith(t, func(c *config.Config) { c.CapMax = "120.00" })
	const email = "ceiling@example.com"
	a.LinkTestAccount(t, "user:"+email)
	for i, d := range []string{"c-1.io", "c-2.io", "c-3.io"} {
		h := &recHuman{action: mcp.ElicitationResponseActionAccept}
		tok := gatedTokenFor(t, ts.URL, email, d)
		res, err := call(t, testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h}), "domain_register", map[string]any{"domain": d})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if res.IsError {
				t.Fatalf("%s: %v", d, res)
			}
			continue
		}
		if code := errCode(t, res); code != "cap_exceeded" {
			t.Fatalf("past --cap-max: code %q", code)
		}
		if msgs := h.shown(); strings.Contains(msgs, "Raise the monthly cap") {
			t.Fatalf("a raise past --cap-max was asked: %q", msgs)
		}
	}
}

// recHuman answers every question the same way and remembers them all.
type recHuman struct {
	action mcp.ElicitationResponseAction
	mu     sync.Mutex
	asked  atomic.Int32
	all    []string
}

func (h *recHuman) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.mu.Lock()
	h.all = append(h.all, r.Params.Message)
	h.mu.Unlock()
	h.asked.Add(1)
	res := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: h.action}}
	if h.action == mcp.ElicitationResponseActionAccept {
		res.Content = map[string]any{"approve": true}
	}
	return res, nil
}

func (h *recHuman) shown() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.all, "\n---\n")
}

// TestCapRaiseByApprovalOnly: with --form-gates approval (production's
// default) the cap_raise gate is never put to the MCP client, even one
// that would accept it: an agent running its own client cannot raise its
// human's cap. The call parks as a cap_raise approval; nothing is charged
// or raised until the human decides it.
func TestCapRaiseByApprovalOnly(t *testing.T) {
	a, ts := newAppWith(t, func(c *config.Config) {
		c.FormGates = "approval"
		c.Caps = []string{"cloudflare=40.00"}
		c.ConfirmAbove = "1000.00" // no purchase gate: only the cap stands in the way
	})
	const email = "self-raise@example.com"
	principal := "user:" + email
	a.LinkTestAccount(t, principal)
	yes := &recHuman{action: mcp.ElicitationResponseActionAccept} // the agent answering itself
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(gatedTokenFor(t, ts.URL, email, "self.io")), Elicit: yes})
	res, err := call(t, c, "domain_register", map[string]any{"domain": "self.io"})
	if err != nil || errCode(t, res) != "approval_required" {
		t.Fatalf("an eliciting client over the cap with --form-gates approval: %v %s", err, resultJSON(t, res))
	}
	if n := yes.asked.Load(); n != 0 {
		t.Fatalf("the client was asked %d question(s): %q", n, yes.shown())
	}
	if n := len(a.FakeCloudflare().Charges()); n != 0 {
		t.Fatalf("%d charge(s) before the human decided", n)
	}
	for _, e := range readAudit(t, a.Trail(), principal) {
		if e.Event == "cap_raise" {
			t.Fatalf("the cap was raised without the human: %+v", e)
		}
	}
	id := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	ap, err := a.Approvals().Get(context.Background(), id)
	if err != nil || ap.Kind != "cap_raise" || ap.Fields["new_cap"] != "50.00 USD" {
		t.Fatalf("approval %+v %v, want a cap_raise to 50.00 USD", ap, err)
	}
	// Retrying with the approval id before the human decided changes nothing.
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "self.io", "approval_id": id})
	if code := errCode(t, res); code != "approval_pending" && code != "approval_required" {
		t.Fatalf("retry before the decision: %s", resultJSON(t, res))
	}
	if n := len(a.FakeCloudflare().Charges()); n != 0 {
		t.Fatalf("%d charge(s) before the human decided", n)
	}
	if _, err := a.Approvals().Decide(context.Background(), id, principal, true, "human"); err != nil {
		t.Fatal(err)
	}
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "self.io", "approval_id": id})
	if res.IsError || len(a.FakeCloudflare().Charges()) != 1 {
		t.Fatalf("after the human approved: %s", resultJSON(t, res))
	}
}
