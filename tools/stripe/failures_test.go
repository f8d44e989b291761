package stripe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	stripefake "github.com/tollgate-dev/tollgate/fixtures/stripe"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

func TestProviderFailures(t *testing.T) {
	type result struct {
		code           fault.Code
		reached        bool
		mayHaveCharged bool
		status         int
	}
	tests := []struct {
		name   string
		arm    func(*stripefake.Fake)
		want   result
		noSubs bool
	}{
		{name: "5xx is not retried", arm: func(f *stripefake.Fake) { f.FailNext(1, 500) },
			want: result{code: ProviderError, reached: true, mayHaveCharged: true, status: 500}},
		{name: "503 is not retried", arm: func(f *stripefake.Fake) { f.FailNext(1, 503) },
			want: result{code: ProviderError, reached: true, mayHaveCharged: true, status: 503}},
		{name: "rate limited", arm: func(f *stripefake.Fake) { f.FailNext(1, 429) },
			want: result{code: ProviderRefused, reached: true, status: 429}},
		{name: "timeout", arm: func(f *stripefake.Fake) { f.Timeout(2 * time.Second) },
			want: result{code: ProviderError, reached: true, mayHaveCharged: true}},
		{name: "card declined", arm: func(f *stripefake.Fake) { f.DeclineCard(true) },
			want: result{code: CardDeclined, reached: true, status: 402}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := setup(t, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
			cus, pm := withCard(t, f, c)
			price, _ := f.PriceID("plan.starter")
			before := len(apiRequests(f))
			tt.arm(f)
			sub, err := c.StartSubscription(context.Background(), cus.ID, price, pm, "sub-fail-1", nil)
			wantCode(t, err, tt.want.code)
			var ce *CallError
			if !errors.As(err, &ce) {
				t.Fatalf("no CallError in %v", err)
			}
			got := result{code: fault.CodeOf(err), reached: provider.Reached(err), mayHaveCharged: MayHaveCharged(err), status: ce.HTTPStatus}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if sub.ID != "" {
				t.Fatalf("a failed call returned subscription %+v", sub)
			}
			if n := len(apiRequests(f)) - before; n != 1 {
				t.Fatalf("the adapter sent %d requests, want exactly 1 (no retries)", n)
			}
			if len(f.Subscriptions()) != 0 || len(f.Charges()) != 0 {
				t.Fatalf("fake holds %d subscriptions, %d charges", len(f.Subscriptions()), len(f.Charges()))
			}
			d, _ := ce.Details().(map[string]any)
			if d["provider"] != "stripe" || d["request_reached_provider"] != tt.want.reached || d["may_have_charged"] != tt.want.mayHaveCharged {
				t.Fatalf("details %v", d)
			}
			if tt.want.status != 0 && !strings.HasPrefix(ce.RequestID, "req_") {
				t.Fatalf("no Request-Id kept: %+v", ce)
			}
			if tt.want.code == CardDeclined && (d["decline_code"] != "generic_decline" || !strings.Contains(fault.PublicOf(err), "Your card was declined")) {
				t.Fatalf("decline: %v / %s", d, fault.PublicOf(err))
			}
		})
	}
}

func TestReadsFailCleanly(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	f.FailNext(1, 502)
	_, err := c.PriceForPlan(ctx, "plan.starter")
	wantCode(t, err, ProviderError)
	if MayHaveCharged(err) || !strings.Contains(fault.PublicOf(err), "nothing was charged") {
		t.Fatalf("a failed read: %v", err)
	}
	_, err = c.PriceForPlan(ctx, "plan.enterprise")
	wantCode(t, err, fault.NotFound)
	_, _, err = c.CheckoutResult(ctx, "cs_test_doesnotexist")
	wantCode(t, err, ProviderRefused)
	if d := err.(*fault.Error).Cause.(*CallError); d.HTTPStatus != 404 || d.StripeCode != "resource_missing" {
		t.Fatalf("%+v", d)
	}
}

func TestWrongKeyIsRefusedAndNotEchoed(t *testing.T) {
	f, c := setup(t, func(cfg *Config) { cfg.SecretKey = "sk_test_wrong_key_abcdefghijkl" })
	_, err := c.FindOrCreateCustomer(context.Background(), "a@example.com", "user:a", "cus-user:a")
	wantCode(t, err, ProviderRefused)
	if strings.Contains(err.Error(), "ijkl") || strings.Contains(err.Error(), "sk_test") || !strings.Contains(fault.PublicOf(err), SecretKeyEnv) {
		t.Fatalf("message or cause shows the key, or does not name %s: %v", SecretKeyEnv, err)
	}
	if len(f.Customers()) != 0 {
		t.Fatal("created with a wrong key")
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"customer without an idempotency key", func() error {
			_, err := c.FindOrCreateCustomer(ctx, "a@example.com", "user:a", "")
			return err
		}},
		{"idempotency key over 255 characters", func() error {
			_, err := c.FindOrCreateCustomer(ctx, "a@example.com", "user:a", strings.Repeat("k", 256))
			return err
		}},
		{"idempotency key with a newline", func() error {
			_, err := c.FindOrCreateCustomer(ctx, "a@example.com", "user:a", "k\nX-Evil: 1")
			return err
		}},
		{"not an email", func() error {
			_, err := c.FindOrCreateCustomer(ctx, "ada", "user:a", "k")
			return err
		}},
		{"empty principal", func() error {
			_, err := c.FindOrCreateCustomer(ctx, "a@example.com", "", "k")
			return err
		}},
		{"checkout for a path, not a customer", func() error {
			_, err := c.CreateSetupCheckout(ctx, "cus_1/../../v1/charges", "https://a.example/s", "https://a.example/c", "k")
			return err
		}},
		{"checkout with a relative success url", func() error {
			_, err := c.CreateSetupCheckout(ctx, "cus_1", "/done", "https://a.example/c", "k")
			return err
		}},
		{"session id with a query", func() error {
			_, _, err := c.CheckoutResult(ctx, "cs_1?expand[]=customer")
			return err
		}},
		{"subscription without an idempotency key", func() error {
			_, err := c.StartSubscription(ctx, "cus_1", "price_1", "pm_1", "", nil)
			return err
		}},
		{"subscription without a payment method", func() error {
			_, err := c.StartSubscription(ctx, "cus_1", "price_1", "", "k", nil)
			return err
		}},
		{"subscription with a price id in the payment method", func() error {
			_, err := c.StartSubscription(ctx, "cus_1", "price_1", "price_1", "k", nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, fault.InvalidArgument)
			if provider.Reached(err) {
				t.Fatal("reported as reaching Stripe")
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("invalid arguments sent %d requests", n)
	}
}

func TestUnreachable(t *testing.T) {
	f := stripefake.New(stripefake.Config{SecretKey: serverKey})
	url, stop := f.Start()
	stop() // nothing listens there any more
	c, err := NewClient(Config{BaseURL: url, SecretKey: serverKey, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StartSubscription(context.Background(), "cus_1", "price_1", "pm_1", "k", nil)
	wantCode(t, err, ProviderError)
	if provider.Reached(err) || MayHaveCharged(err) || !strings.Contains(fault.PublicOf(err), "nothing was sent") {
		t.Fatalf("an unreachable Stripe: %v", err)
	}
}
