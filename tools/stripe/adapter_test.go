package stripe

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/catalog"
	stripefake "github.com/tollgate-dev/tollgate/fixtures/stripe"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const serverKey = "sk_test_tollgate_server_key_0123"

// setup starts a fake and a client configured with the server's key.
func setup(t *testing.T, mod ...func(*Config)) (*stripefake.Fake, *Client) {
	t.Helper()
	f := stripefake.New(stripefake.Config{SecretKey: serverKey})
	url, stop := f.Start()
	t.Cleanup(stop)
	cfg := Config{BaseURL: url, SecretKey: serverKey, Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func wantCode(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if c := fault.CodeOf(err); c != code {
		t.Fatalf("code %s (%v), want %s", c, err, code)
	}
}

// apiRequests are the recorded requests to Stripe's API (not the hosted page).
func apiRequests(f *stripefake.Fake) []stripefake.Recorded {
	var out []stripefake.Recorded
	for _, r := range f.Requests() {
		if strings.HasPrefix(r.Path, "/v1/") {
			out = append(out, r)
		}
	}
	return out
}

func posts(f *stripefake.Fake, path string) []stripefake.Recorded {
	var out []stripefake.Recorded
	for _, r := range apiRequests(f) {
		if r.Method == http.MethodPost && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// withCard returns a customer with a card saved through Checkout.
func withCard(t *testing.T, f *stripefake.Fake, c *Client) (Customer, string) {
	t.Helper()
	ctx := context.Background()
	cus, err := c.FindOrCreateCustomer(ctx, "ada@example.com", "user:ada", "cus-user:ada")
	if err != nil {
		t.Fatal(err)
	}
	co, err := c.CreateSetupCheckout(ctx, cus.ID, "https://tollgate.example/billing/done", "https://tollgate.example/billing/cancel", "co-user:ada-1")
	if err != nil {
		t.Fatal(err)
	}
	pm, err := f.CompleteCheckout(co.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cus, pm
}

func TestWholeFlowAgainstTheFake(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()

	cus, err := c.FindOrCreateCustomer(ctx, "ada@example.com", "user:ada", "cus-user:ada")
	if err != nil || !cus.Created || !strings.HasPrefix(cus.ID, "cus_") || cus.Email != "ada@example.com" || !strings.HasPrefix(cus.RequestID, "req_") {
		t.Fatalf("create: %+v, %v", cus, err)
	}
	again, err := c.FindOrCreateCustomer(ctx, "ada@example.com", "user:ada", "cus-user:ada")
	if err != nil || again.Created || again.ID != cus.ID {
		t.Fatalf("find: %+v, %v", again, err)
	}
	if got := f.Customers(); len(got) != 1 || got[0].Metadata[MetadataPrincipal] != "user:ada" {
		t.Fatalf("fake customers %+v", got)
	}

	co, err := c.CreateSetupCheckout(ctx, cus.ID, "https://tollgate.example/billing/done?s={CHECKOUT_SESSION_ID}", "https://tollgate.example/billing/cancel", "co-user:ada-1")
	if err != nil || !strings.HasPrefix(co.ID, "cs_") || !strings.HasSuffix(co.URL, "/checkout/"+co.ID) || co.ExpiresAt.IsZero() || co.RequestID == "" {
		t.Fatalf("checkout: %+v, %v", co, err)
	}
	pm, done, err := c.CheckoutResult(ctx, co.ID)
	if err != nil || done || pm != "" {
		t.Fatalf("open session: %q %v %v", pm, done, err)
	}

	// The human opens the page and presses its one button.
	res, err := http.Get(co.URL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the checkout page:\n%s", page)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err = browser.PostForm(string(m[1]), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "https://tollgate.example/billing/done?s="+co.ID {
		t.Fatalf("submit: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	pm, done, err = c.CheckoutResult(ctx, co.ID)
	if err != nil || !done || !strings.HasPrefix(pm, "pm_") {
		t.Fatalf("completed session: %q %v %v", pm, done, err)
	}
	if pms, err := c.PaymentMethods(ctx, cus.ID); err != nil || len(pms) != 1 || pms[0] != pm {
		t.Fatalf("PaymentMethods: %v %v", pms, err)
	}

	price, err := c.PriceForPlan(ctx, "plan.team")
	if err != nil || !strings.HasPrefix(price.ID, "price_") || price.Amount != money.USD(4900) || price.Interval != catalog.Month || price.LookupKey != "plan.team" {
		t.Fatalf("price: %+v, %v", price, err)
	}
	sub, err := c.StartSubscription(ctx, cus.ID, price.ID, pm, "sub-user:ada-plan.team-1", nil)
	if err != nil || sub.Status != "active" || sub.Amount != money.USD(4900) || !strings.HasPrefix(sub.ID, "sub_") || sub.Replayed ||
		!strings.HasPrefix(sub.RequestID, "req_") {
		t.Fatalf("subscription: %+v, %v", sub, err)
	}
	charges := f.Charges()
	if len(charges) != 1 || charges[0].Subscription != sub.ID || charges[0].Amount != price.Amount || charges[0].PaymentMethod != pm {
		t.Fatalf("charges %+v", charges)
	}

	// What went over the wire.
	reqs := apiRequests(f)
	if len(reqs) != 9 {
		t.Fatalf("the fake saw %d API requests, want 9", len(reqs))
	}
	keys := map[string]string{
		"/v1/customers":         "cus-user:ada",
		"/v1/checkout/sessions": "co-user:ada-1",
		"/v1/subscriptions":     "sub-user:ada-plan.team-1",
	}
	for _, r := range reqs {
		if r.Auth != "Bearer "+serverKey {
			t.Fatalf("%s %s carried Authorization %q, want the server's key", r.Method, r.Path, r.Auth)
		}
		if r.StripeVersion != stripefake.APIVersion {
			t.Fatalf("%s %s: Stripe-Version %q", r.Method, r.Path, r.StripeVersion)
		}
		if r.Method == http.MethodPost && r.IdempotencyKey != keys[r.Path] {
			t.Fatalf("POST %s: Idempotency-Key %q, want the caller's %q", r.Path, r.IdempotencyKey, keys[r.Path])
		}
		if r.Status != 200 {
			t.Fatalf("%s %s answered %d", r.Method, r.Path, r.Status)
		}
	}
	sr := posts(f, "/v1/subscriptions")[0].Form
	if sr.Get("customer") != cus.ID || sr.Get("items[0][price]") != price.ID || sr.Get("default_payment_method") != pm ||
		sr.Get("payment_behavior") != "error_if_incomplete" {
		t.Fatalf("subscription body %v", sr)
	}
	cr := posts(f, "/v1/checkout/sessions")[0].Form
	if cr.Get("mode") != "setup" || cr.Get("customer") != cus.ID || cr.Get("payment_method_types[0]") != "card" {
		t.Fatalf("checkout body %v", cr)
	}
}

func TestCustomerOfAnotherPrincipalIsNotAdopted(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	a, err := c.FindOrCreateCustomer(ctx, "shared@example.com", "user:a", "cus-user:a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.FindOrCreateCustomer(ctx, "shared@example.com", "user:b", "cus-user:b")
	if err != nil || !b.Created || b.ID == a.ID {
		t.Fatalf("second principal got %+v (first %s), %v", b, a.ID, err)
	}
	if n := len(f.Customers()); n != 2 {
		t.Fatalf("%d customers", n)
	}
}

func TestRetryWithTheSameKeyIsReplayed(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	cus, pm := withCard(t, f, c)
	price, _ := f.PriceID("plan.starter")

	first, err := c.StartSubscription(ctx, cus.ID, price, pm, "sub-key-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.StartSubscription(ctx, cus.ID, price, pm, "sub-key-1", nil)
	if err != nil || second.ID != first.ID || !second.Replayed || second.RequestID == first.RequestID {
		t.Fatalf("retry: %+v, %v (first %+v)", second, err, first)
	}
	if n, m := len(f.Subscriptions()), len(f.Charges()); n != 1 || m != 1 {
		t.Fatalf("%d subscriptions, %d charges after a retry", n, m)
	}

	// The same key for another purchase is Stripe's idempotency error.
	team, _ := f.PriceID("plan.team")
	_, err = c.StartSubscription(ctx, cus.ID, team, pm, "sub-key-1", nil)
	wantCode(t, err, ProviderRefused)
	if MayHaveCharged(err) || len(f.Subscriptions()) != 1 {
		t.Fatal("a reused key started a subscription")
	}
}

func TestTimeoutThenRetryFindsTheFirstSubscription(t *testing.T) {
	f, c := setup(t, func(cfg *Config) { cfg.Timeout = 150 * time.Millisecond })
	ctx := context.Background()
	cus, pm := withCard(t, f, c)
	price, _ := f.PriceID("plan.starter")

	f.LateAnswer(2 * time.Second)
	_, err := c.StartSubscription(ctx, cus.ID, price, pm, "sub-late-1", nil)
	wantCode(t, err, ProviderError)
	if !provider.Reached(err) || !MayHaveCharged(err) {
		t.Fatalf("a timed-out subscription POST must say it may have charged: %v", err)
	}
	if !strings.Contains(fault.PublicOf(err), "same idempotency key") {
		t.Fatalf("message: %s", fault.PublicOf(err))
	}
	f.LateAnswer(0)
	sub, err := c.StartSubscription(ctx, cus.ID, price, pm, "sub-late-1", nil)
	if err != nil || !sub.Replayed || len(f.Subscriptions()) != 1 || sub.ID != f.Subscriptions()[0].ID || len(f.Charges()) != 1 {
		t.Fatalf("retry: %+v, %v; fake has %d subscriptions", sub, err, len(f.Subscriptions()))
	}
}

func TestCheckoutExpired(t *testing.T) {
	var offset atomic.Int64 // seconds the fake's clock is ahead
	f := stripefake.New(stripefake.Config{SecretKey: serverKey,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Second) }})
	url, stop := f.Start()
	defer stop()
	c, err := NewClient(Config{BaseURL: url, SecretKey: serverKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cus, err := c.FindOrCreateCustomer(ctx, "a@example.com", "user:a", "cus-user:a")
	if err != nil {
		t.Fatal(err)
	}
	co, err := c.CreateSetupCheckout(ctx, cus.ID, "https://a.example/s", "https://a.example/c", "co-1")
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(25 * 60 * 60)
	_, done, err := c.CheckoutResult(ctx, co.ID)
	wantCode(t, err, CheckoutExpired)
	if done {
		t.Fatal("an expired session reported complete")
	}
}
