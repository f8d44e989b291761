package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	fakestripe "github.com/tollgate-dev/tollgate/fixtures/stripe"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestCompareMonth(t *testing.T) {
	usd := money.USD
	ledger := map[string][]spend.Charge{
		"user:a": {{Key: "in_1", Amount: usd(900)}, {Key: "in_2", Amount: usd(900)}, {Key: "in_3", Amount: usd(500)}},
	}
	prov := []providerCharge{
		{Principal: "user:a", Key: "in_1", Amount: usd(900)},
		{Principal: "user:a", Key: "in_2", Amount: usd(1900)},
		{Principal: "user:a", Key: "in_4", Amount: usd(700)},
	}
	got := compareMonth(ledger, nil, prov, nil)
	kinds := map[string]string{}
	for _, m := range got {
		kinds[m.Key] = m.Kind
	}
	if len(got) != 3 || kinds["in_2"] != "amount_differs" || kinds["in_3"] != "committed_without_charge" || kinds["in_4"] != "charged_without_commit" {
		t.Fatalf("mismatches %+v", got)
	}
	if clean := compareMonth(map[string][]spend.Charge{"user:a": {{Key: "in_1", Amount: usd(900)}}}, nil, prov[:1], nil); len(clean) != 0 {
		t.Fatalf("clean month has mismatches %+v", clean)
	}
	// The same invoice in a neighbouring month on the other side matches.
	if near := compareMonth(map[string][]spend.Charge{"user:a": {{Key: "in_1", Amount: usd(900)}}}, nil, nil, prov[:1]); len(near) != 0 {
		t.Fatalf("a neighbouring month's invoice is a mismatch: %+v", near)
	}
	if near := compareMonth(nil, map[string][]spend.Charge{"user:a": {{Key: "in_4", Amount: usd(700)}}}, prov[2:], nil); len(near) != 0 {
		t.Fatalf("a neighbouring month's commit is a mismatch: %+v", near)
	}
	// An invoice committed to another principal's ledger is a mismatch.
	if other := compareMonth(map[string][]spend.Charge{"user:b": {{Key: "in_1", Amount: usd(900)}}}, nil, prov[:1], nil); len(other) != 1 {
		t.Fatalf("another principal's commit matched: %+v", other)
	}
}

// TestSpendReconcileStripe runs the command against a fake Stripe: clean
// (exit 0) after a subscription committed and bound, then exit 1 with an
// injected mismatch on each side.
func TestSpendReconcileStripe(t *testing.T) {
	const key = "sk_test_reconcile"
	f := fakestripe.New(fakestripe.Config{SecretKey: key})
	base, stop := f.Start()
	defer stop()
	post := func(path string, form url.Values) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, res.StatusCode, out)
		}
		return out
	}
	cus := post("/v1/customers", url.Values{"email": {"alice@example.com"}, "metadata[tollgate_principal]": {alicePrincipal}})["id"].(string)
	cs := post("/v1/checkout/sessions", url.Values{"mode": {"setup"}, "customer": {cus}, "currency": {"usd"}, "success_url": {"https://example.com/ok"}})["id"].(string)
	pm, err := f.CompleteCheckout(cs)
	if err != nil {
		t.Fatal(err)
	}
	price, _ := f.PriceID("plan.starter")
	sub := post("/v1/subscriptions", url.Values{"customer": {cus}, "items[0][price]": {price}, "default_payment_method": {pm}})
	inv := sub["latest_invoice"].(string)
	paid := f.Charges()[0].Amount

	rurl := testkit.RedisURL(t)
	opt, err := redis.ParseURL(rurl)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	l, err := spend.New(rdb, spend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := l.Hold(ctx, spend.HoldRequest{HoldID: "h1", Principal: alicePrincipal, Provider: spend.Stripe, Amount: paid, Recurring: paid, Tool: "subscription_start"})
	if err != nil {
		t.Fatal(err)
	}
	cst, _, _ := l.CommitStep(alicePrincipal, h.ID, paid)
	bst, bparse, err := l.BindStep(alicePrincipal, h.ID, spend.Subscription{ID: sub["id"].(string), Provider: spend.Stripe}, inv)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := fuse.Run(ctx, rdb, cst, bst); err != nil || bparse(res.Replies[1]) != nil {
		t.Fatalf("commit+bind %v %v", res, err)
	}

	env := []string{"STRIPE_SECRET_KEY=" + key}
	args := []string{"spend", "reconcile", "--provider", "stripe", "--month", h.Month, "--redis-url", rurl, "--stripe-api-url", base}
	out, errOut, code := runBin(t, env, args...)
	if code != exitOK || !strings.Contains(out, "no mismatch") || !strings.Contains(out, "1 provider charge") {
		t.Fatalf("clean reconcile: exit %d\n%s\n%s", code, out, errOut)
	}

	// The ledger commits a charge Stripe never took.
	if err := l.NoteCharge(ctx, alicePrincipal, spend.Stripe, h.Month, "in_ghost", "sub_ghost", money.USD(100)); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runBin(t, env, append(args, "--json")...)
	var rep struct {
		Mismatches []Mismatch `json:"mismatches"`
	}
	if code != exitRefused || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Mismatches) != 1 ||
		rep.Mismatches[0].Kind != "committed_without_charge" || rep.Mismatches[0].Key != "in_ghost" || !strings.Contains(errOut, "mismatch") {
		t.Fatalf("injected mismatch: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runBin(t, env, "spend", "reconcile", "--provider", "stripe", "--month", "2026-13", "--redis-url", rurl); code != exitUsage {
		t.Fatalf("bad month: exit %d %s", code, errOut)
	}
}

// TestSpendReconcileCloudflare registers a domain through a sandbox
// server's real tool path, then reconciles the month with the sandbox's
// fake Cloudflare: clean (exit 0), then exit 1 with each kind of mismatch
// injected into the ledger, and exit 2 against a server without the
// sandbox's route.
func TestSpendReconcileCloudflare(t *testing.T) {
	rurl := testkit.RedisURL(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + rurl})
	acct := testkit.LinkAccount(t, srv.URL, "alice@example.com")
	const domain = "reconcile-cf.com"
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "domain:read domain:register spend:read",
		Details: `[{"type":"tollgate:resources","domains":["` + domain + `"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"}]`})
	c := testkit.HTTP(t, srv.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "domain_register", map[string]any{"domain": domain}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("domain_register: %v %+v", err, res)
	}
	var reg struct {
		Status  string      `json:"status"`
		Charged money.Money `json:"charged"`
		Account string      `json:"account_id"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &reg); err != nil || reg.Status != "registered" || reg.Account != acct || reg.Charged.Minor <= 0 {
		t.Fatalf("registration %s: %+v %v", b, reg, err)
	}
	mon := spend.MonthOf(time.Now())
	key := acct + "/" + domain

	// The commit listed the registration under Cloudflare's key for it.
	rdb := redisClient(t, rurl)
	l, err := spend.New(rdb, spend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := l.Charges(ctx, alicePrincipal, spend.Cloudflare, mon)
	if err != nil || len(cs) != 1 || cs[0].Key != key || cs[0].Amount != reg.Charged || cs[0].Ref == "" {
		t.Fatalf("ledger charges %+v %v, want %s = %s", cs, err, key, reg.Charged)
	}

	args := []string{"spend", "reconcile", "--provider", "cloudflare", "--month", mon, "--redis-url", rurl, "--issuer", srv.URL}
	out, errOut, code := runBin(t, nil, args...)
	if code != exitOK || !strings.Contains(out, "cloudflare "+mon+": 1 provider charge(s)") || !strings.Contains(out, "no mismatch") {
		t.Fatalf("clean reconcile: exit %d\n%s\n%s", code, out, errOut)
	}

	type report struct {
		Provider        string     `json:"provider"`
		ProviderCharges int        `json:"provider_charges"`
		Mismatches      []Mismatch `json:"mismatches"`
	}
	// mismatch runs reconcile --json and wants exactly one mismatch of
	// kind for k, then the table naming it.
	mismatch := func(kind, k string, ledger, provider *money.Money) {
		t.Helper()
		out, errOut, code := runBin(t, nil, append(args, "--json")...)
		var rep report
		if code != exitRefused || json.Unmarshal([]byte(out), &rep) != nil || rep.Provider != "cloudflare" || rep.ProviderCharges != 1 ||
			len(rep.Mismatches) != 1 || !strings.Contains(errOut, "1 mismatch") {
			t.Fatalf("%s: exit %d\n%s\n%s", kind, code, out, errOut)
		}
		m := rep.Mismatches[0]
		if m.Kind != kind || m.Key != k || m.Principal != alicePrincipal ||
			(ledger == nil) != (m.Ledger == nil) || ledger != nil && *m.Ledger != *ledger ||
			(provider == nil) != (m.Provider == nil) || provider != nil && *m.Provider != *provider {
			t.Fatalf("%s: got %+v", kind, m)
		}
		table, _, code := runBin(t, nil, args...)
		if code != exitRefused || !strings.Contains(table, "KIND") || !strings.Contains(table, "KEY") ||
			!regexp.MustCompile(regexp.QuoteMeta(kind)+`\s+`+regexp.QuoteMeta(alicePrincipal)+`\s+`+regexp.QuoteMeta(k)).MatchString(table) {
			t.Fatalf("%s: table exit %d\n%s", kind, code, table)
		}
	}
	chargesKey := "tg:{" + alicePrincipal + "}:charges:cloudflare:" + mon
	noted := rdb.HGet(ctx, chargesKey, key).Val()
	_, ref, _ := strings.Cut(noted, "|")

	// The ledger noted another amount than Cloudflare charged.
	rdb.HSet(ctx, chargesKey, key, "1|"+ref)
	one := money.USD(1)
	mismatch("amount_differs", key, &one, &reg.Charged)

	// Cloudflare charged a registration the ledger never committed.
	rdb.HDel(ctx, chargesKey, key)
	mismatch("charged_without_commit", key, nil, &reg.Charged)
	rdb.HSet(ctx, chargesKey, key, noted)

	// The ledger committed a registration Cloudflare never charged.
	ghost := acct + "/ghost-cf.com"
	if err := l.NoteCharge(ctx, alicePrincipal, spend.Cloudflare, mon, ghost, "ray-ghost", money.USD(1044)); err != nil {
		t.Fatal(err)
	}
	ghostAmt := money.USD(1044)
	mismatch("committed_without_charge", ghost, &ghostAmt, nil)
	rdb.HDel(ctx, chargesKey, ghost)
	if out, errOut, code := runBin(t, nil, args...); code != exitOK {
		t.Fatalf("clean again: exit %d\n%s\n%s", code, out, errOut)
	}
	// The human links another Cloudflare account: the registration is
	// still the one the ledger noted for them, not a mismatch.
	linksKey := "tg:{" + alicePrincipal + "}:links"
	rdb.HSet(ctx, linksKey, "cloudflare_account", "ffffffffffffffffffffffffffffffff")
	if out, errOut, code := runBin(t, nil, args...); code != exitOK {
		t.Fatalf("after a relink: exit %d\n%s\n%s", code, out, errOut)
	}
	rdb.HSet(ctx, linksKey, "cloudflare_account", acct)

	// A server without the sandbox's fake Cloudflare (production): exit 2,
	// saying why, nothing changed.
	prod := httptest.NewServer(http.NotFoundHandler())
	defer prod.Close()
	_, errOut, code = runBin(t, nil, "spend", "reconcile", "--provider", "cloudflare", "--redis-url", rurl, "--issuer", prod.URL)
	if code != exitUsage || !strings.Contains(errOut, "sandbox only") || !strings.Contains(errOut, "billing export") || !strings.Contains(errOut, "Nothing was changed") {
		t.Fatalf("production server: exit %d %s", code, errOut)
	}
	if _, errOut, code := runBin(t, nil, "spend", "reconcile", "--provider", "paypal", "--redis-url", rurl); code != exitUsage || !strings.Contains(errOut, "stripe or cloudflare") {
		t.Fatalf("unknown provider: exit %d %s", code, errOut)
	}
}
