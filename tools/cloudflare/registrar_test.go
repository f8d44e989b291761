package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const serverToken = "tollgate-server-token"

// setup starts a fake and a client configured with the server's token.
func setup(t *testing.T, cfg cffake.Config, mod ...func(*Config)) (*cffake.Fake, *Client) {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = serverToken
	}
	f := cffake.New(cfg)
	url, stop := f.Start()
	t.Cleanup(stop)
	c := Config{BaseURL: url, Timeout: 5 * time.Second, RequestsPerSecond: 1000}
	for _, m := range mod {
		m(&c)
	}
	base, err := NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	client, err := base.As(Credential{AccountID: f.AccountID(), Token: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: serverToken})})
	if err != nil {
		t.Fatal(err)
	}
	return f, client
}

func name(t *testing.T, s string) domainname.Name {
	t.Helper()
	n, err := domainname.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// posts counts the recorded POSTs to the registrations endpoint.
func posts(f *cffake.Fake) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/registrar/registrations") {
			n++
		}
	}
	return n
}

func wantCode(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if c := fault.CodeOf(err); c != code {
		t.Fatalf("code %s (%v), want %s", c, err, code)
	}
}

func TestRegisterSuccessPath(t *testing.T) {
	f, c := setup(t, cffake.Config{StatusPolls: 2})
	ctx := context.Background()
	shop := name(t, "shop.com")

	a, err := c.CheckDomain(ctx, shop)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Available || a.Price != money.USD(1117) || a.RenewalPrice != money.USD(1117) || a.MinYears != 1 || a.Tier != "standard" || a.RayID == "" {
		t.Fatalf("availability %+v", a)
	}
	cost, err := a.Cost(2)
	if err != nil || cost != money.USD(2234) {
		t.Fatalf("Cost(2) = %v, %v", cost, err)
	}

	reg, err := c.Register(ctx, shop, 1)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Status != StatePending || reg.Completed || !strings.HasPrefix(reg.ID, "reg_") ||
		!reg.PriceReported || reg.Price != money.USD(1117) || reg.RayID == "" {
		t.Fatalf("registration %+v", reg)
	}
	for i, want := range []State{StateInProgress, StateSucceeded} {
		st, err := c.RegistrationStatus(ctx, shop)
		if err != nil || st.State != want || st.Registered() != (want == StateSucceeded) {
			t.Fatalf("poll %d: %+v, %v; want %s", i+1, st, err, want)
		}
	}

	charges := f.Charges()
	if len(charges) != 1 || charges[0].Domain != "shop.com" || charges[0].Price != reg.Price {
		t.Fatalf("fake charged %+v, adapter reported %v", charges, reg.Price)
	}
	reqs := f.Requests()
	if len(reqs) != 4 {
		t.Fatalf("fake saw %d requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.Auth != "Bearer "+serverToken {
			t.Fatalf("%s %s carried Authorization %q, want the server's token", r.Method, r.Path, r.Auth)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["domain_name"] != "shop.com" || body["years"] != 1.0 || body["auto_renew"] != false || body["privacy_mode"] != "redaction" {
		t.Fatalf("registration body %s", reqs[1].Body)
	}
	if reqs[1].Header.Get("Prefer") != "respond-async" {
		t.Fatalf("registration sent without Prefer: respond-async")
	}
	if reg.RayID != reqs[1].RayID {
		t.Fatalf("ray id %q, fake answered %q", reg.RayID, reqs[1].RayID)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	f, c := setup(t, cffake.Config{Token: "the-real-token"})
	_, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
	// A refused credential is the human's to renew: account_connect again.
	wantCode(t, err, fault.AccountRelinkRequired)
	if !strings.Contains(fault.PublicOf(err), "account_connect") || strings.Contains(fault.PublicOf(err), serverToken) {
		t.Fatalf("message %q", fault.PublicOf(err))
	}
	if reqs := f.Requests(); len(reqs) != 1 || reqs[0].Auth != "Bearer "+serverToken {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestServerErrorIsNotRetried(t *testing.T) {
	for _, status := range []int{500, 502, 503} {
		f, c := setup(t, cffake.Config{})
		f.FailNext(1, status)
		_, err := c.Register(context.Background(), name(t, "shop.com"), 1)
		wantCode(t, err, ProviderError)
		if !provider.Reached(err) {
			t.Fatalf("HTTP %d: a 5xx answer must count as reached", status)
		}
		var ce *CallError
		if !errors.As(err, &ce) || ce.HTTPStatus != status || ce.RayID == "" ||
			!strings.Contains(strings.Join(ce.ProviderMessages, " "), "injected failure") {
			t.Fatalf("HTTP %d: cause %+v", status, ce)
		}
		if n := posts(f); n != 1 {
			t.Fatalf("HTTP %d: fake recorded %d registration POSTs, want exactly 1", status, n)
		}
		if len(f.Charges()) != 0 {
			t.Fatalf("HTTP %d: charged", status)
		}
	}
}

func TestRateLimitIsNotRetried(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.RateLimit(1)
	_, err := c.Register(context.Background(), name(t, "shop.com"), 1)
	wantCode(t, err, ProviderRefused)
	if n := posts(f); n != 1 {
		t.Fatalf("fake recorded %d POSTs, want 1", n)
	}
	if !strings.Contains(fault.PublicOf(err), "1s") {
		t.Fatalf("message %q does not pass on Retry-After", fault.PublicOf(err))
	}
}

func TestTimeout(t *testing.T) {
	f, c := setup(t, cffake.Config{}, func(c *Config) { c.Timeout = 150 * time.Millisecond })
	f.Timeout(10 * time.Second)
	began := time.Now()
	_, err := c.Register(context.Background(), name(t, "slow.com"), 1)
	if time.Since(began) > 3*time.Second {
		t.Fatalf("Register took %s", time.Since(began))
	}
	wantCode(t, err, ProviderError)
	if !provider.Reached(err) || !strings.Contains(fault.PublicOf(err), "poll its registration status") {
		t.Fatalf("a timed-out POST must say it may have reached Cloudflare: %q", fault.PublicOf(err))
	}
	if n := posts(f); n != 1 {
		t.Fatalf("fake recorded %d POSTs, want 1", n)
	}

	f.Timeout(10 * time.Second)
	_, err = c.CheckDomain(context.Background(), name(t, "slow.com"))
	wantCode(t, err, ProviderError)
	if !strings.Contains(fault.PublicOf(err), "nothing was charged") {
		t.Fatalf("a timed-out check must say nothing was charged: %q", fault.PublicOf(err))
	}
}

func TestUnreachableIsNotSent(t *testing.T) {
	f := cffake.New(cffake.Config{Token: serverToken})
	url, stop := f.Start()
	stop() // nothing listens there now
	base, err := NewClient(Config{BaseURL: url, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := base.As(Credential{AccountID: f.AccountID(), Token: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: serverToken})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(context.Background(), name(t, "shop.com"), 1)
	wantCode(t, err, ProviderError)
	if provider.Reached(err) || !strings.Contains(fault.PublicOf(err), "nothing was sent") {
		t.Fatalf("refused connection: reached %v, %q", provider.Reached(err), fault.PublicOf(err))
	}
}

func TestActionRequired(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.ActionRequired("paused.com")
	n := name(t, "paused.com")
	reg, err := c.Register(context.Background(), n, 1)
	wantCode(t, err, ActionRequired)
	if reg.Status != StateActionRequired || reg.Domain != n {
		t.Fatalf("registration %+v", reg)
	}
	st, err := c.RegistrationStatus(context.Background(), n)
	wantCode(t, err, ActionRequired)
	if st.State != StateActionRequired || st.Action == "" || st.Registered() {
		t.Fatalf("status %+v", st)
	}
	if len(f.Charges()) != 0 {
		t.Fatalf("a paused registration charged: %+v", f.Charges())
	}
}

func TestUnavailableDomain(t *testing.T) {
	f, c := setup(t, cffake.Config{Taken: []string{"taken.com"}})
	ctx := context.Background()
	a, err := c.CheckDomain(ctx, name(t, "taken.com"))
	if err != nil || a.Available || a.Reason != "domain_unavailable" {
		t.Fatalf("check %+v, %v", a, err)
	}
	if _, err := a.Cost(1); fault.CodeOf(err) != DomainUnavailable {
		t.Fatalf("Cost of an unavailable name: %v", err)
	}
	_, err = c.Register(ctx, name(t, "taken.com"), 1)
	wantCode(t, err, DomainUnavailable)

	f.Unavailable("gone.com")
	_, err = c.Register(ctx, name(t, "gone.com"), 1)
	wantCode(t, err, DomainUnavailable)

	if _, err := c.Register(ctx, name(t, "mine.com"), 1); err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(ctx, name(t, "mine.com"), 1)
	wantCode(t, err, DomainUnavailable)
	if len(f.Charges()) != 1 {
		t.Fatalf("charges %+v", f.Charges())
	}

	f.Premium("gold.com")
	a, err = c.CheckDomain(ctx, name(t, "gold.com"))
	if err != nil || a.Available || a.Reason != "domain_premium" {
		t.Fatalf("premium %+v, %v", a, err)
	}
}

func TestPricesFromTheFake(t *testing.T) {
	_, c := setup(t, cffake.Config{Prices: map[string]money.Money{
		"dev": {Minor: 1234, Currency: "eur"},
		"ai":  money.USD(8000),
	}})
	a, err := c.CheckDomain(context.Background(), name(t, "shop.dev"))
	if err != nil || a.Price != (money.Money{Minor: 1234, Currency: "eur"}) {
		t.Fatalf("%+v, %v", a, err)
	}
	a, err = c.CheckDomain(context.Background(), name(t, "shop.ai"))
	if err != nil || a.MinYears != 2 {
		t.Fatalf("%+v, %v", a, err)
	}
	if _, err := a.Cost(1); fault.CodeOf(err) != fault.InvalidArgument {
		t.Fatalf("Cost below the minimum term: %v", err)
	}
	if cost, err := a.Cost(2); err != nil || cost != money.USD(16000) {
		t.Fatalf("Cost(2) = %v, %v", cost, err)
	}
	a, err = c.CheckDomain(context.Background(), name(t, "shop.com"))
	if err != nil || a.Available || a.Reason != "extension_not_supported" {
		t.Fatalf("unpriced TLD: %+v, %v", a, err)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	_, err := c.Register(ctx, name(t, "shop.com"), 0)
	wantCode(t, err, fault.InvalidArgument)
	_, err = c.Register(ctx, name(t, "shop.com"), 11)
	wantCode(t, err, fault.InvalidArgument)
	for _, raw := range []string{"", "Shop.com", "shop.com.", "shop.com/../../zones", "münchen.de"} {
		if _, err := c.CheckDomain(ctx, domainname.Name(raw)); fault.CodeOf(err) != domainname.InvalidDomain {
			t.Fatalf("CheckDomain(Name(%q)): %v", raw, err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("fake saw %d requests", n)
	}
}

func TestDetailsForTheToolError(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.FailNext(1, 500)
	_, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
	var d interface{ Details() any }
	if !errors.As(err, &d) {
		t.Fatal("error has no Details")
	}
	m := d.Details().(map[string]any)
	if m["http_status"] != 500 || m["ray_id"] == "" || m["request_reached_provider"] != true {
		t.Fatalf("details %v", m)
	}
	if strings.Contains(fault.PublicOf(err), serverToken) || strings.Contains(err.Error(), serverToken) {
		t.Fatal("the token leaked into an error")
	}
}

func TestClientRateLimitRefusesWithoutSending(t *testing.T) {
	f, c := setup(t, cffake.Config{}, func(c *Config) { c.RequestsPerSecond = 0.01; c.Timeout = 200 * time.Millisecond })
	ctx := context.Background()
	if _, err := c.CheckDomain(ctx, name(t, "a.com")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Register(ctx, name(t, "a.com"), 1)
	wantCode(t, err, ProviderError)
	if provider.Reached(err) || !strings.Contains(fault.PublicOf(err), "rate limit") {
		t.Fatalf("reached %v: %q", provider.Reached(err), fault.PublicOf(err))
	}
	if posts(f) != 0 {
		t.Fatal("the registration was sent")
	}
}
