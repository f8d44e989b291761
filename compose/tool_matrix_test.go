//go:build !nosandbox

package compose_test

// The "Bad input" matrix of issue 6, across tools: missing scope, a zone
// outside tollgate:resources and its look-alikes, provider 4xx/5xx/timeout,
// idempotent retries, task budget and cap, and a declined gate. What other
// files already cover for one tool (domain_register's refusals and
// failures, deploy_promote's gate) is not repeated here.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compose/composetest"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// newAppWith is newApp with a changed config (e.g. --cap).
func newAppWith(t *testing.T, change func(*config.Config)) (*compose.App, *httptest.Server) {
	t.Helper()
	return composetest.Serve(t, testkit.RedisURL(t), change)
}

// callWithin is call with a longer deadline, for provider timeouts (the
// adapters give up after 30s).
func callWithin(t *testing.T, c caller, d time.Duration, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

// errBody is a tool error's structured error.
func errBody(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	if res == nil || !res.IsError {
		t.Fatalf("want a tool error, got %+v", res)
	}
	e, _ := structured(t, res)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("tool error without an error body: %+v", res)
	}
	return e
}

// spendOf reads spend_status for one provider: spent and held, in minor units.
func spendOf(t *testing.T, c caller, provider string) (spent, held int64) {
	t.Helper()
	res, err := call(t, c, "spend_status", map[string]any{"provider": provider})
	if err != nil || res.IsError {
		t.Fatalf("spend_status: %v %+v", err, res)
	}
	ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
	return int64(ps["spent"].(map[string]any)["amount_minor"].(float64)), int64(ps["held"].(map[string]any)["amount_minor"].(float64))
}

// billingOnFile gives email a Stripe customer with a saved card in the
// app's fake Stripe, and links both to the principal with the e-mail Stripe
// holds, as the billing_setup callback does (flows_test.go walks that flow
// through the pages).
func billingOnFile(t *testing.T, a *compose.App, email string) (customer, pm string) {
	t.Helper()
	srv := httptest.NewServer(a.FakeStripe())
	defer srv.Close()
	post := func(path string, form url.Values) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer sk_test_tollgate_sandbox")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			t.Fatalf("fake stripe %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	customer = post("/v1/customers", url.Values{"email": {email}, "test_clock": {a.SandboxClock()}})["id"].(string)
	cs := post("/v1/checkout/sessions", url.Values{"mode": {"setup"}, "customer": {customer}, "currency": {"usd"},
		"success_url": {"https://example.com/ok"}})["id"].(string)
	pm, err := a.FakeStripe().CompleteCheckout(cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Redis.Client.HSet(context.Background(), "tg:{user:"+email+"}:links",
		"stripe_customer", customer, "stripe_payment_method", pm, "stripe_email", email).Err(); err != nil {
		t.Fatal(err)
	}
	return customer, pm
}

// flippingHuman answers like human, after flipping a provider's failure
// switch: the failure then hits the call after the gate (the one that
// charges), not the quote before it.
type flippingHuman struct {
	*human
	flip func()
}

func (h *flippingHuman) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if h.flip != nil {
		h.flip()
	}
	return h.human.Elicit(ctx, r)
}

// buyer is a subscription_start client for alice, with billing on file and
// a human who answers (and flips a switch first, if flip is set).
func buyer(t *testing.T, a *compose.App, ts *httptest.Server, details string, action mcp.ElicitationResponseAction, flip func()) (*client.Client, *human) {
	t.Helper()
	billingOnFile(t, a, "alice@example.com")
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "subscription:create spend:read", Details: details})
	h := &human{action: action}
	return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: &flippingHuman{human: h, flip: flip}}), h
}

// afterRequote arranges for set to run once the price lookup that follows
// the human's answer has reached the fake Stripe, so the switch hits the
// next request: the subscription itself. (After an answer the pipeline
// quotes again: the price is looked up twice.) That lookup is held for
// 300ms, long enough to flip the switch before the subscription request.
func afterRequote(t *testing.T, a *compose.App, set func()) {
	fake := a.FakeStripe()
	before := len(fake.Requests())
	fake.Timeout(300 * time.Millisecond)
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			reqs := fake.Requests()
			if len(reqs) > before {
				if r := reqs[before]; r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/v1/prices") {
					t.Errorf("the request after the answer is %s %s, not the price lookup", r.Method, r.Path)
				}
				fake.Timeout(0)
				set()
				return
			}
		}
		t.Error("no price lookup after the human answered")
	}()
}

// inProcessBuyer is buyer in-process, in the legacy era: the human is asked
// within the one tools/call (elicitation/create), so a switch flipped while
// answering hits the subscription request itself, and a provider timeout
// is not cut short by the HTTP test client's own 30s limit.
func inProcessBuyer(t *testing.T, a *compose.App, ts *httptest.Server, details string, flip func()) (*client.Client, *human) {
	t.Helper()
	billingOnFile(t, a, "alice@example.com")
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "subscription:create spend:read", Details: details})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	h := &human{action: mcp.ElicitationResponseActionAccept}
	return testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{Era: testkit.Legacy, Elicit: &flippingHuman{human: h, flip: flip}}), h
}

// TestEveryToolRefusesAMissingScope: a token without a tool's scopes is
// refused over HTTP at the edge (403 insufficient_scope naming all the
// scopes the tool needs) and in-process by the guard (a tool error), before
// any provider is called.
func TestEveryToolRefusesAMissingScope(t *testing.T) {
	a, ts := newApp(t)
	// Two tokens, each with a scope some tool needs and not the others'.
	tokens := map[string]string{
		"catalog:read": testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read", Details: resources("scope-demo.com")}),
		"spend:read":   testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "spender", Scope: "spend:read", Details: resources("scope-demo.com")}),
	}
	tried := 0
	for _, tool := range a.Tools {
		if len(tool.Scopes) == 0 {
			continue
		}
		held := "catalog:read"
		if slices.Contains(tool.Scopes, held) {
			held = "spend:read"
		}
		tok := tokens[held]
		name, need := tool.Name(), strings.Join(tool.Scopes, " ")
		tried++
		t.Run(name+"/http", func(t *testing.T) {
			c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
			if res, err := call(t, c, name, map[string]any{}); err == nil {
				t.Fatalf("a token with only %s called %s: %+v", held, name, res)
			}
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, name)
			resp := postMCP(t, ts.URL, "Bearer "+tok, body)
			var p struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&p)
			www := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusForbidden || p.Error != "insufficient_scope" ||
				!strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, fmt.Sprintf("scope=%q", need)) {
				t.Fatalf("got %d %+v, WWW-Authenticate %q; want 403 insufficient_scope naming %q", resp.StatusCode, p, www, need)
			}
		})
		t.Run(name+"/in-process", func(t *testing.T) {
			a.Credentials = func(context.Context) (string, error) { return tok, nil }
			c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
			res, err := call(t, c, name, map[string]any{})
			if err != nil {
				t.Fatalf("protocol error %v, want a tool error", err)
			}
			e := errBody(t, res)
			if e["code"] != "insufficient_scope" || e["provider_called"] != false {
				t.Fatalf("error %v", e)
			}
			for _, s := range tool.Scopes {
				if !strings.Contains(e["message"].(string), s) {
					t.Fatalf("the refusal does not name scope %s: %v", s, e["message"])
				}
			}
		})
	}
	if tried < 12 {
		t.Fatalf("only %d tools have scopes", tried)
	}
	if n := len(a.FakeCloudflare().Requests()); n != 0 {
		t.Fatalf("refused calls reached Cloudflare %d times", n)
	}
	if n := len(a.FakeStripe().Requests()); n != 0 {
		t.Fatalf("refused calls reached Stripe %d times", n)
	}
}

// TestZoneToolsStayInsideResources: every tool that names a zone or domain
// refuses one outside the token's tollgate:resources, and a look-alike of
// one inside, without a provider request.
func TestZoneToolsStayInsideResources(t *testing.T) {
	a, ts := newApp(t)
	// Both are zones of alice's linked account: only the token's
	// tollgate:resources keeps other-zone.com out.
	for _, z := range []string{"zone-demo.com", "other-zone.com"} {
		a.AddTestZone(t, alicePrincipal, z)
	}
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{
		Scope:   "dns:read dns:write ssl:write token:create domain:read domain:register",
		Details: resources("zone-demo.com"),
	})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	toolArgs := map[string]func(zone string) map[string]any{
		"dns_list": func(z string) map[string]any { return map[string]any{"zone": z} },
		"dns_upsert": func(z string) map[string]any {
			return map[string]any{"zone": z, "type": "A", "name": "www", "content": "192.0.2.1"}
		},
		"dns_delete": func(z string) map[string]any {
			return map[string]any{"zone": z, "id": "0123456789abcdef0123456789abcdef"}
		},
		"ssl_configure":    func(z string) map[string]any { return map[string]any{"zone": z, "mode": "strict"} },
		"api_token_create": func(z string) map[string]any { return map[string]any{"zone": z, "permissions": []any{"DNS Write"}} },
		"domain_check":     func(z string) map[string]any { return map[string]any{"domain": z} },
		"domain_register":  func(z string) map[string]any { return map[string]any{"domain": z} },
	}
	zones := []struct{ name, zone, code string }{
		{"outside resources", "other-zone.com", "resource_forbidden"},
		{"cyrillic look-alike", "zone-dеmo.com", "lookalike_domain"},
		{"uppercase variant", "Zone-Demo.com", "lookalike_domain"},
		{"trailing-dot variant", "zone-demo.com.", "lookalike_domain"},
	}
	fake := a.FakeCloudflare()
	for tool, args := range toolArgs {
		for _, z := range zones {
			t.Run(tool+"/"+z.name, func(t *testing.T) {
				before := len(fake.Requests())
				res, err := call(t, c, tool, args(z.zone))
				if err != nil {
					t.Fatal(err)
				}
				e := errBody(t, res)
				if e["code"] != z.code || e["provider_called"] != false {
					t.Fatalf("error %v, want %s without a provider call", e, z.code)
				}
				if got := len(fake.Requests()); got != before {
					t.Fatalf("%d requests reached Cloudflare", got-before)
				}
			})
		}
	}
	if n := len(fake.Charges()) + len(fake.Tokens()); n != 0 {
		t.Fatalf("refused calls left %d charges or tokens", n)
	}
}

// TestProviderFailuresAreClear: a provider's 4xx, 5xx or timeout becomes a
// tool error with a stable code that says the provider was called; a paid
// call leaves no hold, counts nothing for a definite refusal, and counts
// the held amount when the outcome is unknown (settle, tools/spendsteps.go).
func TestProviderFailuresAreClear(t *testing.T) {
	const hang = 45 * time.Second // longer than the adapters' 30s
	type failure struct {
		name    string
		code    string
		timeout bool
	}
	failures := []failure{{"4xx", "provider_refused", false}, {"5xx", "provider_error", false}, {"timeout", "provider_error", true}}
	status := map[string]int{"4xx": 400, "5xx": 500}

	// left is given alice's account and the id of fail-demo.com in it.
	cfTools := []struct {
		tool string
		args map[string]any
		flip func(a *compose.App, status int)            // the 4xx/5xx switch
		left func(a *compose.App, acct, zone string) int // what the provider kept
	}{
		{"dns_upsert", map[string]any{"zone": "fail-demo.com", "type": "A", "name": "www", "content": "192.0.2.1"},
			func(a *compose.App, s int) { a.FakeCloudflare().FailWrites(1, s) },
			func(a *compose.App, _, zone string) int { return len(a.FakeCloudflare().Records(zone)) }},
		{"ssl_configure", map[string]any{"zone": "fail-demo.com", "mode": "strict"},
			func(a *compose.App, s int) { a.FakeCloudflare().FailWrites(1, s) },
			func(a *compose.App, _, zone string) int {
				if a.FakeCloudflare().Settings(zone).SSL == "strict" {
					return 1
				}
				return 0
			}},
		{"api_token_create", map[string]any{"zone": "fail-demo.com", "permissions": []any{"DNS Write"}},
			func(a *compose.App, s int) { a.FakeCloudflare().FailWrites(1, s) },
			func(a *compose.App, _, _ string) int { return len(a.FakeCloudflare().Tokens()) }},
		{"deploy_preview", map[string]any{"name": "fail--demo-com", "script": scriptV1},
			func(a *compose.App, s int) { a.FakeCloudflare().FailUploads(1, s) },
			func(a *compose.App, acct, _ string) int { return len(a.FakeCloudflare().ScriptsIn(acct)) }},
	}
	for _, ct := range cfTools {
		for _, f := range failures {
			t.Run(ct.tool+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				a, ts := newApp(t)
				zone := a.AddTestZone(t, alicePrincipal, "fail-demo.com")
				acct := a.LinkTestAccount(t, alicePrincipal)
				kept := ct.left(a, acct, zone)
				tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "dns:write ssl:write token:create deploy:preview", Details: resources("fail-demo.com")})
				// In-process: the HTTP test client gives up after 30s, as the adapter does.
				a.Credentials = func(context.Context) (string, error) { return tok, nil }
				c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
				if f.timeout {
					a.FakeCloudflare().Timeout(hang)
				} else {
					ct.flip(a, status[f.name])
				}
				res, err := callWithin(t, c, 2*time.Minute, ct.tool, ct.args)
				a.FakeCloudflare().Timeout(0)
				if err != nil {
					t.Fatal(err)
				}
				e := errBody(t, res)
				if e["code"] != f.code || e["provider_called"] != true || e["message"] == "" {
					t.Fatalf("error %v, want %s with provider_called", e, f.code)
				}
				if got := ct.left(a, acct, zone); got != kept {
					t.Fatalf("the failed call changed the provider: %d objects, had %d", got, kept)
				}
			})
		}
	}

	for _, f := range failures {
		t.Run("subscription_start/"+f.name, func(t *testing.T) {
			t.Parallel()
			a, ts := newApp(t)
			set := func() { a.FakeStripe().FailNext(1, status[f.name]) }
			if f.timeout {
				set = func() { a.FakeStripe().Timeout(hang) }
			}
			flip := func() { afterRequote(t, a, set) }
			c, h := inProcessBuyer(t, a, ts, resources("alice-shop.com"), flip)
			res, err := callWithin(t, c, 2*time.Minute, "subscription_start", map[string]any{"plan": "plan.starter"})
			a.FakeStripe().Timeout(0)
			if err != nil {
				t.Fatal(err)
			}
			e := errBody(t, res)
			if e["code"] != f.code || e["provider_called"] != true || e["message"] == "" || h.asked.Load() != 1 {
				t.Fatalf("error %v (asked %d), want %s with provider_called", e, h.asked.Load(), f.code)
			}
			if n := len(a.FakeStripe().Subscriptions()); n != 0 {
				t.Fatalf("%d subscriptions after a failure", n)
			}
			spent, held := spendOf(t, c, "stripe")
			want := int64(900) // unknown outcome: the held first period stays counted
			if f.name == "4xx" {
				want = 0 // a definite refusal: the hold is released
			}
			if held != 0 || spent != want {
				t.Fatalf("spend_status spent %d held %d, want spent %d held 0", spent, held, want)
			}
		})
	}
}

// TestIdempotentRetries: the same call twice is one provider object and the
// same result; the same idempotency_key with other arguments is refused.
func TestIdempotentRetries(t *testing.T) {
	t.Run("api_token_create", func(t *testing.T) {
		a, ts := newApp(t)
		a.AddTestZone(t, alicePrincipal, "idem-demo.com")
		acct := a.LinkTestAccount(t, alicePrincipal)
		tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "token:create", Details: resources("idem-demo.com")})
		c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
		before := len(a.FakeCloudflare().Tokens())
		args := map[string]any{"zone": "idem-demo.com", "permissions": []any{"DNS Write"}, "expires_in": 3600}
		var first string
		for i := range 2 {
			res, err := call(t, c, "api_token_create", args)
			if err != nil || res.IsError {
				t.Fatalf("call %d: %v %s", i, err, resultJSON(t, res))
			}
			got := resultJSON(t, res)
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("the retry's result differs:\n%s\n%s", first, got)
			}
		}
		if toks := a.FakeCloudflare().Tokens()[before:]; len(toks) != 1 || toks[0].Account != acct {
			t.Fatalf("tokens minted %+v, want 1 in alice's account %s", toks, acct)
		}
		// api_token_create takes no idempotency_key: its arguments are the key.
		res, _ := call(t, c, "api_token_create", map[string]any{"zone": "idem-demo.com", "permissions": []any{"DNS Write"}, "idempotency_key": "k-1"})
		if code := errCode(t, res); code != "invalid_argument" {
			t.Fatalf("unknown idempotency_key argument: %q", code)
		}
	})
	t.Run("subscription_start", func(t *testing.T) {
		a, ts := newApp(t)
		c, h := buyer(t, a, ts, resources("alice-shop.com"), mcp.ElicitationResponseActionAccept, nil)
		args := map[string]any{"plan": "plan.starter", "idempotency_key": "retry-key-1"}
		var first string
		for i := range 2 {
			res, err := call(t, c, "subscription_start", args)
			if err != nil || res.IsError {
				t.Fatalf("call %d: %v %s", i, err, resultJSON(t, res))
			}
			got := resultJSON(t, res)
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("the retry's result differs:\n%s\n%s", first, got)
			}
		}
		if n := len(a.FakeStripe().Subscriptions()); n != 1 || h.asked.Load() != 1 {
			t.Fatalf("%d subscriptions, human asked %d times; want 1 and 1", n, h.asked.Load())
		}
		res, _ := call(t, c, "subscription_start", map[string]any{"plan": "plan.team", "idempotency_key": "retry-key-1"})
		if code := errCode(t, res); code != "idempotency_conflict" {
			t.Fatalf("same key, other plan: %q", code)
		}
		if n := len(a.FakeStripe().Subscriptions()); n != 1 {
			t.Fatalf("%d subscriptions after a conflicting key", n)
		}
		if spent, held := spendOf(t, c, "stripe"); spent != 900 || held != 0 {
			t.Fatalf("spent %d held %d, want one period (900) counted once", spent, held)
		}
	})
}

// TestBudgetAndCapExceeded: subscription_start's first period (9.00) does
// not fit a 1.00 task budget, nor a 5.00 monthly cap: refused, nothing
// held, nothing started.
func TestBudgetAndCapExceeded(t *testing.T) {
	tests := []struct {
		name    string
		caps    []string
		details string
		code    string
	}{
		{"task budget smaller than the plan", nil,
			`[{"type":"tollgate:resources","domains":["alice-shop.com"]},{"type":"tollgate:spend","provider":"stripe","max_amount":"1.00","currency":"usd"}]`,
			"budget_exceeded"},
		{"monthly cap smaller than the plan", []string{"stripe=5.00"}, resources("alice-shop.com"), "cap_exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ts := newAppWith(t, func(c *config.Config) { c.Caps = tc.caps })
			c, _ := buyer(t, a, ts, tc.details, mcp.ElicitationResponseActionAccept, nil)
			stripeBefore := len(a.FakeStripe().Requests())
			res, err := call(t, c, "subscription_start", map[string]any{"plan": "plan.starter"})
			if err != nil {
				t.Fatal(err)
			}
			e := errBody(t, res)
			if e["code"] != tc.code || e["provider_called"] != false {
				t.Fatalf("error %v, want %s without a provider call", e, tc.code)
			}
			if n := len(a.FakeStripe().Subscriptions()); n != 0 {
				t.Fatalf("%d subscriptions", n)
			}
			for _, r := range a.FakeStripe().Requests()[stripeBefore:] {
				if r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v1/subscriptions") {
					t.Fatalf("a refused subscription reached Stripe: %s %s", r.Method, r.Path)
				}
			}
			if spent, held := spendOf(t, c, "stripe"); spent != 0 || held != 0 {
				t.Fatalf("spent %d held %d after a refusal", spent, held)
			}
		})
	}
}

// TestSubscriptionGateDeclined: the human declines the purchase: nothing is
// started, held or counted.
func TestSubscriptionGateDeclined(t *testing.T) {
	a, ts := newApp(t)
	c, h := buyer(t, a, ts, resources("alice-shop.com"), mcp.ElicitationResponseActionDecline, nil)
	res, err := call(t, c, "subscription_start", map[string]any{"plan": "plan.starter"})
	if err != nil {
		t.Fatal(err)
	}
	e := errBody(t, res)
	if e["code"] != "gate_declined" || e["provider_called"] != false || h.asked.Load() != 1 {
		t.Fatalf("error %v, asked %d", e, h.asked.Load())
	}
	if msg, _ := h.last.Load().(string); !strings.Contains(msg, "9.00") {
		t.Fatalf("the purchase gate did not show the price: %q", msg)
	}
	if n := len(a.FakeStripe().Subscriptions()); n != 0 {
		t.Fatalf("%d subscriptions after a decline", n)
	}
	if spent, held := spendOf(t, c, "stripe"); spent != 0 || held != 0 {
		t.Fatalf("spent %d held %d after a decline", spent, held)
	}
}
