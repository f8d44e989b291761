//go:build !nosandbox

package compose_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func resources(domains ...string) string {
	b, _ := json.Marshal(domains)
	return `[{"type":"tollgate:resources","domains":` + string(b) + `},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`
}

func paidClient(t *testing.T, base string, details string) *client.Client {
	t.Helper()
	tok := testkit.TaskToken(t, base, testkit.Grant{Scope: "domain:read domain:register spend:read", Details: details})
	return testkit.HTTP(t, base+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
}

func TestDomainRegisterHoldsThenCommits(t *testing.T) {
	a, ts := newApp(t)
	acct := a.LinkTestAccount(t, alicePrincipal)
	c := paidClient(t, ts.URL, resources("shop-demo.com"))

	res, err := call(t, c, "domain_check", map[string]any{"domain": "shop-demo.com"})
	if err != nil || res.IsError {
		t.Fatalf("domain_check: %v %+v", err, res)
	}
	price := structured(t, res)["price"].(map[string]any)["amount_minor"].(float64)

	res, err = call(t, c, "domain_register", map[string]any{"domain": "shop-demo.com"})
	if err != nil || res.IsError {
		t.Fatalf("domain_register: %v %+v", err, structured(t, res))
	}
	out := structured(t, res)
	if out["status"] != "registered" || out["charged"].(map[string]any)["amount_minor"].(float64) != price ||
		out["account_id"] != acct || out["zone_recorded"] != true {
		t.Fatalf("register result %v, want registered in alice's account %s with its zone recorded", out, acct)
	}
	// A retry with the same arguments replays: no second charge.
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "shop-demo.com"})
	if res.IsError {
		t.Fatalf("replay: %+v", structured(t, res))
	}
	charges := a.FakeCloudflare().Charges()
	if len(charges) != 1 || charges[0].Account != acct {
		t.Fatalf("fixture charges %+v, want 1 in alice's account %s", charges, acct)
	}

	res, _ = call(t, c, "spend_status", map[string]any{"provider": "cloudflare"})
	ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
	if ps["spent"].(map[string]any)["amount_minor"].(float64) != price || ps["held"].(map[string]any)["amount_minor"].(float64) != 0 {
		t.Fatalf("spend_status %v", ps)
	}
}

func TestDomainRegisterRefusals(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	before := len(a.FakeCloudflare().Requests()) // linking asked the fake
	c := paidClient(t, ts.URL, resources("shop-demo.com"))
	tests := []struct {
		name, domain, code string
	}{
		{"a domain the token does not name", "other-demo.com", "resource_forbidden"},
		{"cyrillic look-alike", "shop-dеmo.com", "lookalike_domain"},
		{"uppercase variant", "Shop-Demo.com", "lookalike_domain"},
		{"trailing-dot variant", "shop-demo.com.", "lookalike_domain"},
		{"zero-width joiner", "shop\u200d-demo.com", "lookalike_domain"},
		{"shell metacharacters", "shop-demo.com;rm -rf /", "invalid_domain"},
		{"254 characters", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 59) + ".com", "invalid_domain"},
		{"missing TLD", "shopdemo", "invalid_domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := call(t, c, "domain_register", map[string]any{"domain": tc.domain})
			if err != nil {
				t.Fatal(err)
			}
			if code := errCode(t, res); code != tc.code {
				t.Fatalf("code %q, want %q: %v", code, tc.code, structured(t, res))
			}
			if e := structured(t, res)["error"].(map[string]any); e["provider_called"] != false {
				t.Fatalf("provider_called: %v", e)
			}
		})
	}
	if n := len(a.FakeCloudflare().Requests()) - before; n != 0 {
		t.Fatalf("refused calls reached the provider %d times", n)
	}
	// Resources but no task budget: the policy's per-agent limit never
	// applied, so a paid call is refused.
	noBudget := paidClient(t, ts.URL, `[{"type":"tollgate:resources","domains":["shop-demo.com"]}]`)
	res0, _ := call(t, noBudget, "domain_register", map[string]any{"domain": "shop-demo.com"})
	if code := errCode(t, res0); code != "budget_required" {
		t.Fatalf("token without tollgate:spend: %q", code)
	}
	// No resources at all: a paid call is refused.
	bare := paidClient(t, ts.URL, "")
	res, _ := call(t, bare, "domain_register", map[string]any{"domain": "shop-demo.com"})
	if code := errCode(t, res); code != "resource_forbidden" {
		t.Fatalf("token without tollgate:resources: %q", code)
	}
}

func TestRacingRegistrationsStopAtTheCap(t *testing.T) {
	a, ts := newApp(t)
	// .com costs 11.17 in the sandbox: 8 fit under 100.00, the 9th does not.
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("race-%02d.com", i))
	}
	acct := a.LinkTestAccount(t, alicePrincipal)
	c := paidClient(t, ts.URL, resources(names...))
	var wg sync.WaitGroup
	codes := make([]string, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := call(t, c, "domain_register", map[string]any{"domain": n})
			if err != nil {
				codes[i] = "error"
				return
			}
			codes[i] = errCode(t, res)
		}()
	}
	wg.Wait()
	ok, capped := 0, 0
	for _, c := range codes {
		switch c {
		case "":
			ok++
		case "cap_exceeded", "approval_required":
			// approval_required: the cap_raise gate parked a raise for a
			// human (this client cannot elicit); nothing was held or charged.
			capped++
		default:
			t.Errorf("unexpected code %q", c)
		}
	}
	charges := a.FakeCloudflare().Charges()
	var total int64
	for _, ch := range charges {
		total += ch.Price.Minor
		if ch.Account != acct {
			t.Errorf("%s was registered in account %s, not alice's %s", ch.Domain, ch.Account, acct)
		}
	}
	if ok != len(charges) || total > 10000 || ok == 0 || capped == 0 {
		t.Fatalf("ok %d capped %d charges %d total %d", ok, capped, len(charges), total)
	}
	res, _ := call(t, c, "spend_status", map[string]any{"provider": "cloudflare"})
	ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
	if int64(ps["spent"].(map[string]any)["amount_minor"].(float64)) != total {
		t.Fatalf("spend_status %v disagrees with the fixture's %d", ps, total)
	}
}

func TestDomainRegisterProviderFailures(t *testing.T) {
	a, ts := newApp(t)
	fake := a.FakeCloudflare()
	acct := a.LinkTestAccount(t, alicePrincipal)
	c := paidClient(t, ts.URL, resources("fail-demo.com", "slow-demo.com", "act-demo.com", "taken-demo.com", "years-demo.com", "key-demo.com", "key2-demo.com"))
	spent := func() float64 {
		res, _ := call(t, c, "spend_status", map[string]any{"provider": "cloudflare"})
		ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
		if h := ps["held"].(map[string]any)["amount_minor"].(float64); h != 0 {
			t.Fatalf("a hold was left behind: %v", ps)
		}
		return ps["spent"].(map[string]any)["amount_minor"].(float64)
	}

	fake.FailNext(1, 500)
	res, _ := call(t, c, "domain_register", map[string]any{"domain": "fail-demo.com"})
	// The check (the quote) hit the 500: refused before any hold.
	if code := errCode(t, res); code != "provider_error" {
		t.Fatalf("5xx: code %q", code)
	}
	if spent() != 0 {
		t.Fatal("a 5xx was charged")
	}

	// Paused for the owner: Cloudflare may still charge, so the held
	// price stays counted (for reconciliation) rather than freed.
	fake.ActionRequired("act-demo.com")
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "act-demo.com"})
	if code := errCode(t, res); code != "action_required" {
		t.Fatalf("action_required: code %q %v", code, structured(t, res))
	}
	if got := spent(); got != 1117 {
		t.Fatalf("action_required: spent %v, want the held 1117 counted", got)
	}
	// ... and listed under Cloudflare's key for the registration, so
	// spend reconcile matches it with what Cloudflare bills (or shows it
	// committed without a charge), not as money the ledger missed.
	noted, err := a.Ledger().Charges(context.Background(), alicePrincipal, "cloudflare", spend.MonthOf(time.Now()))
	if err != nil || len(noted) != 1 || noted[0].Key != acct+"/act-demo.com" || noted[0].Amount.Minor != 1117 {
		t.Fatalf("the counted action_required hold is not noted for reconcile: %+v %v", noted, err)
	}
	// Refused by the quote: nothing held, nothing counted.
	fake.Unavailable("taken-demo.com")
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "taken-demo.com"})
	if code := errCode(t, res); code != "domain_unavailable" {
		t.Fatalf("unavailable domain: code %q", code)
	}
	if got := spent(); got != 1117 {
		t.Fatalf("a refused registration was counted: spent %v", got)
	}

	for _, years := range []any{0, -1, 1.5, "two", 11, json.Number("1e309"), json.Number("99999999999999999999")} {
		res, err := call(t, c, "domain_register", map[string]any{"domain": "years-demo.com", "years": years})
		if err != nil {
			continue // a JSON encoder may refuse 1e309 itself
		}
		if code := errCode(t, res); code != "invalid_argument" {
			t.Fatalf("years %v: code %q", years, code)
		}
	}

	res, _ = call(t, c, "domain_register", map[string]any{"domain": "key-demo.com", "idempotency_key": "retry-key-1"})
	if res.IsError {
		t.Fatalf("register with a key: %v", structured(t, res))
	}
	res, _ = call(t, c, "domain_register", map[string]any{"domain": "key2-demo.com", "idempotency_key": "retry-key-1"})
	if code := errCode(t, res); code != "idempotency_conflict" {
		t.Fatalf("same key, other arguments: code %q", code)
	}
	if got := len(fake.Charges()); got != 1 {
		t.Fatalf("charges %d, want 1", got)
	}
}

// TestCancelledRegistrationStaysCounted: an agent that cancels while
// Cloudflare registers cannot take the held price back out of the cap.
func TestCancelledRegistrationStaysCounted(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "domain:register spend:read", Details: resources("cancel-demo.com")})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
	fake := a.FakeCloudflare()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 500 && len(fake.Charges()) == 0; i++ {
			time.Sleep(2 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-done; cancel() }()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "domain_register", map[string]any{"domain": "cancel-demo.com"}
	_, _ = c.CallTool(ctx, req)
	<-done
	time.Sleep(200 * time.Millisecond) // the handler settles after the cancel
	res, _ := call(t, c, "spend_status", map[string]any{"provider": "cloudflare"})
	ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
	spent := ps["spent"].(map[string]any)["amount_minor"].(float64)
	held := ps["held"].(map[string]any)["amount_minor"].(float64)
	var charged int64
	for _, ch := range fake.Charges() {
		charged += ch.Price.Minor
	}
	if charged == 0 {
		t.Fatal("Cloudflare charged nothing before the cancel, so this proves nothing")
	}
	if int64(spent+held) < charged {
		t.Fatalf("the provider charged %d but the ledger counts %v spent + %v held", charged, spent, held)
	}
}

func TestLoopGuardStopsARepeatedRefusal(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	c := paidClient(t, ts.URL, resources("loop-demo.com"))
	a.FakeCloudflare().FailNext(3, 503)
	for i := 0; i < 3; i++ {
		res, _ := call(t, c, "domain_check", map[string]any{"domain": "loop-demo.com"})
		if code := errCode(t, res); code != "provider_error" {
			t.Fatalf("call %d: code %q", i, code)
		}
	}
	before := len(a.FakeCloudflare().Requests())
	res, _ := call(t, c, "domain_check", map[string]any{"domain": "loop-demo.com"})
	if code := errCode(t, res); code != "loop_detected" {
		t.Fatalf("4th identical call: code %q", code)
	}
	if len(a.FakeCloudflare().Requests()) != before {
		t.Fatal("the loop-detected call reached the provider")
	}
}

// TestRedisStoppedMidRun: with its redis-server stopped (SIGSTOP: it
// hangs), paid calls are refused and nothing reaches the provider; when it
// continues, the same client's calls work again.
func TestRedisStoppedMidRun(t *testing.T) {
	srv, err := testkit.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	a, ts := newAppOn(t, srv.URL)
	a.LinkTestAccount(t, alicePrincipal)
	c := paidClient(t, ts.URL, resources("outage-a.com", "outage-b.com", "outage-c.com"))
	if res, _ := call(t, c, "domain_register", map[string]any{"domain": "outage-a.com"}); res.IsError {
		t.Fatalf("before the outage: %v", structured(t, res))
	}
	refusedWhileDown := func(domain string) {
		t.Helper()
		before := len(a.FakeCloudflare().Requests())
		res, err := call(t, c, "domain_register", map[string]any{"domain": domain})
		if err == nil && !res.IsError {
			t.Fatal("a paid call succeeded with Redis down")
		}
		if err == nil {
			if e := structured(t, res)["error"].(map[string]any); e["provider_called"] != false || e["code"] != "unavailable" {
				t.Fatalf("refusal: %v", e)
			}
		}
		if got := len(a.FakeCloudflare().Requests()); got != before {
			t.Fatalf("%d provider calls while Redis was down", got-before)
		}
	}

	// A Redis that hangs: every step times out and refuses.
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	refusedWhileDown("outage-b.com")
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if res, err := call(t, c, "domain_register", map[string]any{"domain": "outage-b.com"}); err != nil || res.IsError {
		t.Fatalf("after Redis resumed: %v %v", err, res)
	}
}

func TestDomainRegisterSendsProgress(t *testing.T) {
	a, ts := newApp(t)
	a.LinkTestAccount(t, alicePrincipal)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "domain:register", Details: resources("progress-demo.com")})
	a.Credentials = func(context.Context) (string, error) { return tok, nil }
	c := testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{})
	var mu sync.Mutex
	var got []string
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			mu.Lock()
			got = append(got, fmt.Sprint(n.Params.AdditionalFields["message"]))
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "domain_register"
	req.Params.Arguments = map[string]any{"domain": "progress-demo.com"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "p1"}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("%v %+v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 || !strings.Contains(got[len(got)-1], "registered") {
		t.Fatalf("progress notifications: %q", got)
	}
}

func TestPlanQuoteCallsNoProvider(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "catalog:read domain:register spend:read",
		Details: `[{"type":"tollgate:resources","domains":["plan-demo.com"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]`})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	res, err := call(t, c, "plan_quote", map[string]any{"actions": []any{
		map[string]any{"tool": "domain_register", "arguments": map[string]any{"domain": "plan-demo.com"}},
		map[string]any{"tool": "domain_register", "arguments": map[string]any{"domain": "plan-demo.io"}},
		map[string]any{"tool": "deploy_promote", "arguments": map[string]any{"name": "plan--demo-com"}},
	}})
	if err != nil || res.IsError {
		t.Fatalf("plan_quote: %v %v", err, res)
	}
	q := structured(t, res)
	p := q["providers"].([]any)[0].(map[string]any)
	if p["provider"] != "cloudflare" || p["total"].(map[string]any)["amount_minor"].(float64) != 1117+5000 || p["fits_task_budget"] != false || q["fits"] != false {
		t.Fatalf("quote %v", q)
	}
	gates := fmt.Sprint(q["gates"])
	if !strings.Contains(gates, "purchase") || !strings.Contains(gates, "production") {
		t.Fatalf("gates %v", q["gates"])
	}
	if !strings.Contains(fmt.Sprint(q["missing_scopes"]), "deploy:production") {
		t.Fatalf("missing scopes %v", q["missing_scopes"])
	}
	if n := len(a.FakeCloudflare().Requests()); n != 0 {
		t.Fatalf("plan_quote made %d provider calls", n)
	}
}
