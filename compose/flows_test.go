//go:build !nosandbox

package compose_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// abs requests an absolute URL (a provider's page) in the browser.
func (b *browser) abs(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var req *http.Request
	if form != nil {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	return b.do(req)
}

func location(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("want a redirect, got %d\n%s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// askApproval calls tool as an agent without elicitation and returns the
// approval id it was given.
func askApproval(t *testing.T, c *client.Client, tool string, args map[string]any) string {
	t.Helper()
	res, err := call(t, c, tool, args)
	if err != nil || errCode(t, res) != "approval_required" {
		t.Fatalf("%s: want approval_required, got %v %+v", tool, err, res)
	}
	return structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
}

func resultJSON(t *testing.T, res *mcp.CallToolResult) string {
	b, _ := json.Marshal(res)
	return string(b)
}

var formAction = regexp.MustCompile(`<form[^>]*method="post" action="([^"]+)"`)
var consentField = regexp.MustCompile(`name="consent" value="([^"]+)"`)

// TestBillingSetupThroughStripeCheckout: the agent is sent to the approvals
// page, the human continues to Stripe's hosted page and saves a card, the
// callback records the payment method and approves; the agent's retry
// finds it on file, and a subscription can start.
func TestBillingSetupThroughStripeCheckout(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "billing:setup subscription:create spend:read", Details: resources("alice-shop.com")})
	agent := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})

	id := askApproval(t, agent, "billing_setup", map[string]any{})

	// Before the human finishes, the retry is refused.
	if res, _ := call(t, agent, "billing_setup", map[string]any{"approval_id": id}); errCode(t, res) != "approval_pending" {
		t.Fatalf("retry before the human finished: %+v", res)
	}

	// Mallory cannot start alice's flow, nor complete its callback.
	mallory := newBrowser(t, ts.URL)
	mallory.signIn("mallory@example.com")
	if resp, _ := mallory.get("/approvals/" + id + "/billing"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("mallory started alice's billing flow: %d", resp.StatusCode)
	}

	b := newBrowser(t, ts.URL)
	b.signIn("alice@example.com")
	resp, page := b.get("/approvals/" + id)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Continue to Stripe") || !strings.Contains(page, "/approvals/"+id+"/billing") {
		t.Fatalf("approval page has no Continue to Stripe:\n%s", page)
	}
	resp, body := b.get("/approvals/" + id + "/billing")
	checkout := location(t, resp, body)
	resp, page = b.abs(http.MethodGet, checkout, nil)
	m := formAction.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("checkout page: %d\n%s", resp.StatusCode, page)
	}
	resp, body = b.abs(http.MethodPost, m[1], url.Values{})
	callback := location(t, resp, body)
	if !strings.HasPrefix(callback, ts.URL+"/oauth/callback/stripe?") || strings.Contains(callback, "{CHECKOUT_SESSION_ID}") {
		t.Fatalf("checkout returned to %q", callback)
	}
	// Another principal's browser with the same link is refused.
	if resp, _ := mallory.abs(http.MethodGet, callback, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory completed alice's callback: %d", resp.StatusCode)
	}
	resp, body = b.abs(http.MethodGet, callback, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Payment method added. The agent can continue.") {
		t.Fatalf("callback: %d\n%s", resp.StatusCode, body)
	}
	ap, err := a.Approvals().Get(context.Background(), id)
	if err != nil || ap.Status != "approved" || ap.DecidedBy != "stripe-checkout" {
		t.Fatalf("approval after checkout: %+v %v", ap, err)
	}
	// The e-mail Stripe holds is recorded: account_connect starts from it.
	if email, err := a.Redis.Client.HGet(context.Background(), "tg:{user:alice@example.com}:links", "stripe_email").Result(); err != nil || email != "alice@example.com" {
		t.Fatalf("the e-mail Stripe verified is not recorded: %q %v", email, err)
	}
	// The callback completes once.
	if resp, _ := b.abs(http.MethodGet, callback, nil); resp.StatusCode == http.StatusOK {
		t.Fatal("the callback completed twice")
	}

	res, err := call(t, agent, "billing_setup", map[string]any{"approval_id": id})
	if err != nil || res.IsError || structured(t, res)["status"] != "on_file" {
		t.Fatalf("retry with approval_id: %v %+v", err, res)
	}
	if strings.Contains(resultJSON(t, res), "pm_") {
		t.Fatalf("a payment method id reached the agent: %s", resultJSON(t, res))
	}
	custs := a.FakeStripe().Customers()
	if len(custs) != 1 || custs[0].Email != "alice@example.com" || len(a.FakeStripe().PaymentMethods(custs[0].ID)) == 0 {
		t.Fatalf("stripe customers %+v", custs)
	}

	// A second billing_setup is on file without asking.
	res, err = call(t, agent, "billing_setup", map[string]any{})
	if err != nil || res.IsError || structured(t, res)["status"] != "on_file" {
		t.Fatalf("second billing_setup: %v %+v", err, res)
	}

	// Now a subscription starts, after the purchase gate.
	h := &human{action: mcp.ElicitationResponseActionAccept}
	buyer := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	res, err = call(t, buyer, "subscription_start", map[string]any{"plan": "plan.starter"})
	if err != nil || res.IsError {
		t.Fatalf("subscription_start: %v %s", err, resultJSON(t, res))
	}
	subs := a.FakeStripe().Subscriptions()
	if len(subs) != 1 || subs[0].Customer != custs[0].ID || h.asked.Load() != 1 {
		t.Fatalf("subscriptions %+v, asked %d", subs, h.asked.Load())
	}
}

// TestAccountConnectThroughCloudflareOAuth: account_connect starts from
// the e-mail Stripe verified, so it is refused before billing_setup; then,
// for an e-mail Cloudflare has an account for, the human continues to
// Cloudflare's consent page and allows; the callback exchanges the code
// with the PKCE verifier, seals the token, links the account and records
// its zones. Callbacks refuse another principal's browser and a wrong
// state.
func TestAccountConnectThroughCloudflareOAuth(t *testing.T) {
	a, ts := newApp(t)
	fake := a.FakeCloudflare()
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "account:link"})
	agent := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})

	before := len(fake.Requests())
	res, err := call(t, agent, "account_connect", map[string]any{})
	if err != nil || errCode(t, res) != "billing_required" {
		t.Fatalf("account_connect before billing_setup: %v %s", err, resultJSON(t, res))
	}
	if n := len(fake.Requests()) - before; n != 0 {
		t.Fatalf("account_connect before billing_setup asked Cloudflare %d times", n)
	}
	billingOnFile(t, a, "alice@example.com")

	want, ok := fake.AccountForEmail("alice@example.com")
	if !ok {
		t.Fatal("the sandbox has no Cloudflare account for alice")
	}
	// A zone alice already holds at Cloudflare: linking records it.
	if _, err := fake.EnsureZoneIn(want.ID, "alice-linked.com"); err != nil {
		t.Fatal(err)
	}
	id := askApproval(t, agent, "account_connect", map[string]any{})

	b := newBrowser(t, ts.URL)
	b.signIn("alice@example.com")
	_, page := b.get("/approvals/" + id)
	if !strings.Contains(page, "Continue to Cloudflare") {
		t.Fatalf("approval page has no Continue to Cloudflare:\n%s", page)
	}
	consent := func() string {
		t.Helper()
		resp, body := b.get("/approvals/" + id + "/cloudflare")
		auth := location(t, resp, body)
		u, _ := url.Parse(auth)
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("login_hint") != "alice@example.com" || q.Get("state") == "" ||
			q.Get("redirect_uri") != ts.URL+"/oauth/callback/cloudflare" {
			t.Fatalf("authorization request %s", auth)
		}
		resp, page := b.abs(http.MethodGet, auth, nil)
		m, c := formAction.FindStringSubmatch(page), consentField.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil || c == nil {
			t.Fatalf("consent page: %d\n%s", resp.StatusCode, page)
		}
		action, _ := url.Parse(m[1])
		resp, body = b.abs(http.MethodPost, u.ResolveReference(action).String(), url.Values{"consent": {c[1]}})
		return location(t, resp, body)
	}

	// A wrong state is refused, and the flow has to start again.
	back := consent()
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("state", "forged-"+q.Get("state"))
	u.RawQuery = q.Encode()
	if resp, _ := b.abs(http.MethodGet, u.String(), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong state: %d", resp.StatusCode)
	}

	back = consent()
	// Mallory's browser with alice's callback link is refused.
	mallory := newBrowser(t, ts.URL)
	mallory.signIn("mallory@example.com")
	if resp, _ := mallory.abs(http.MethodGet, back, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory completed alice's callback: %d", resp.StatusCode)
	}
	if resp, _ := mallory.get("/approvals/" + id + "/cloudflare"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("mallory started alice's flow: %d", resp.StatusCode)
	}
	resp, body := b.abs(http.MethodGet, back, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Cloudflare account linked") {
		t.Fatalf("callback: %d\n%s", resp.StatusCode, body)
	}

	res, err = call(t, agent, "account_connect", map[string]any{"approval_id": id})
	if err != nil || res.IsError || structured(t, res)["account_id"] != want.ID {
		t.Fatalf("retry: %v %s", err, resultJSON(t, res))
	}
	sealed, err := a.Redis.Client.HGet(context.Background(), "tg:{user:alice@example.com}:links", "cred:cloudflare").Result()
	if err != nil || sealed == "" {
		t.Fatalf("no sealed OAuth credential: %v", err)
	}
	grants := fake.OAuthGrants()
	if len(grants) != 1 || grants[0].AccountID != want.ID {
		t.Fatalf("grants %+v", grants)
	}
	// Linked: no more asking; the account's zone is known.
	res, err = call(t, agent, "account_connect", map[string]any{})
	if out := structured(t, res); err != nil || res.IsError || out["status"] != "linked" || out["account_id"] != want.ID ||
		out["email"] != "alice@example.com" || out["zones"] != float64(1) {
		t.Fatalf("second account_connect: %v %s", err, resultJSON(t, res))
	}
	// The zone tools now act on that zone, in that account.
	reader := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(
		testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "reader", Scope: "dns:read", Details: resources("alice-linked.com")}))})
	res, err = call(t, reader, "dns_list", map[string]any{"zone": "alice-linked.com"})
	if err != nil || res.IsError {
		t.Fatalf("dns_list on the linked account's zone: %v %s", err, resultJSON(t, res))
	}
}

// TestAccountConnectCreatesAfterTerms: for an e-mail Cloudflare has no
// account for, the terms gate is asked once, then an account is created
// for that e-mail, owned by the human (not one a server credential
// manages), and linked. account_connect before billing_setup is refused.
func TestAccountConnectCreatesAfterTerms(t *testing.T) {
	a, ts := newApp(t)
	fake := a.FakeCloudflare()
	if _, taken := fake.AccountForEmail("bob@example.com"); taken {
		t.Fatal("the sandbox already has a Cloudflare account for bob")
	}
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Email: "bob@example.com", Scope: "account:link"})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	agent := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	res, err := call(t, agent, "account_connect", map[string]any{})
	if err != nil || errCode(t, res) != "billing_required" || h.asked.Load() != 0 {
		t.Fatalf("account_connect before billing_setup: %v %s asked %d", err, resultJSON(t, res), h.asked.Load())
	}
	billingOnFile(t, a, "bob@example.com")

	accounts := len(fake.Accounts())
	res, err = call(t, agent, "account_connect", map[string]any{})
	if err != nil || res.IsError || structured(t, res)["status"] != "created" || h.asked.Load() != 1 {
		t.Fatalf("create: %v %s asked %d", err, resultJSON(t, res), h.asked.Load())
	}
	msg, _ := h.last.Load().(string)
	for _, want := range []string{"cloudflare.com/terms", fake.TermsVersion(), "bob@example.com"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("terms gate does not show %q: %q", want, msg)
		}
	}
	created, ok := fake.AccountForEmail("bob@example.com")
	if !ok || created.ByAPI || len(fake.Accounts()) != accounts+1 {
		t.Fatalf("account for bob %+v (found %v), %d accounts created; want one of bob's own", created, ok, len(fake.Accounts())-accounts)
	}
	if out := structured(t, res); out["account_id"] != created.ID || out["email"] != "bob@example.com" {
		t.Fatalf("create result %v, want account %s", out, created.ID)
	}
	if linked, err := a.Redis.Client.HGet(context.Background(), "tg:{user:bob@example.com}:links", "cloudflare_account").Result(); err != nil || linked != created.ID {
		t.Fatalf("linked account %q %v, want %s", linked, err, created.ID)
	}
	// Linked now: even with create forced, nothing is asked or created again.
	res, err = call(t, agent, "account_connect", map[string]any{"create": true})
	if err != nil || res.IsError || structured(t, res)["status"] != "linked" || structured(t, res)["account_id"] != created.ID || h.asked.Load() != 1 {
		t.Fatalf("again: %v %s asked %d", err, resultJSON(t, res), h.asked.Load())
	}
	if n := len(fake.Accounts()); n != accounts+1 {
		t.Fatalf("%d accounts created, want 1", n-accounts)
	}
}
