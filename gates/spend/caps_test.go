package spend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

func capsOf(provider string, m money.Money) map[string]money.Money {
	return map[string]money.Money{provider: m}
}

func TestCapOverrides(t *testing.T) {
	policy := func(principal, provider string) (money.Money, bool) {
		switch {
		case principal == bob && provider == Stripe:
			return usd(2000), true
		case principal == "user:frozen" && provider == Stripe:
			return usd(0), true
		case principal == "user:broken":
			return usd(-5), true
		case principal == "user:euro":
			return eur(7000), true
		}
		return money.Money{}, false
	}
	cfg := Config{Caps: capsOf(Stripe, usd(5000)), CapFor: policy}
	tests := []struct {
		name      string
		principal string
		provider  string
		amount    money.Money
		cap       money.Money
		code      fault.Code // of a hold of amount
	}{
		{"provider override from --cap", alice, Stripe, usd(5000), usd(5000), ""},
		{"provider override refuses above it", alice, Stripe, usd(5001), usd(5000), CapExceeded},
		{"default cap for other providers", alice, Cloudflare, usd(10000), usd(10000), ""},
		{"default cap refuses above it", alice, Cloudflare, usd(10001), usd(10000), CapExceeded},
		{"policy override for a principal wins", bob, Stripe, usd(2001), usd(2000), CapExceeded},
		{"policy falls through for another provider", bob, Cloudflare, usd(10000), usd(10000), ""},
		{"policy cap of zero refuses everything", "user:frozen", Stripe, usd(1), usd(0), CapExceeded},
		{"policy cap in euros takes euros", "user:euro", Stripe, eur(7000), eur(7000), ""},
		{"policy cap in euros refuses dollars", "user:euro", Stripe, usd(100), eur(7000), InvalidAmount},
		{"a broken policy cap fails closed", "user:broken", Stripe, usd(1), money.Money{}, fault.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, cfg)
			ctx := context.Background()
			s, err := f.ledger.Status(ctx, tt.principal, tt.provider)
			if tt.code == fault.Internal {
				wantCode(t, err, fault.Internal)
			} else if err != nil || s.Cap != tt.cap || s.Remaining != tt.cap {
				t.Fatalf("status %+v, %v; want cap %s", s, err, tt.cap)
			}
			_, err = f.ledger.Hold(ctx, HoldRequest{HoldID: "h", Principal: tt.principal, Provider: tt.provider, Amount: tt.amount})
			wantCode(t, err, tt.code)
		})
	}
}

func TestCapExceededSaysWhatToDo(t *testing.T) {
	f := newFixture(t, Config{})
	f.mustHold("a", usd(6000))
	wantCode(t, f.ledger.Commit(context.Background(), alice, "a", usd(5000)), "")
	f.mustHold("b", usd(3000))
	_, err := f.hold("c", usd(2500))
	wantCode(t, err, CapExceeded)
	pub := fault.PublicOf(err)
	for _, want := range []string{"50.00 USD spent", "30.00 USD held", "25.00 USD requested", "100.00 USD cap",
		"20.00 USD left", "2026-11", "stripe", "nothing was charged", "tollgate spend cap set --provider stripe", "recurring total", "next month"} {
		if !strings.Contains(pub, want) {
			t.Errorf("public message %q lacks %q", pub, want)
		}
	}
}

// A cap whose currency changes mid-month (an operator edit) must not
// compare dollars with euros: the month's counters keep their currency.
func TestCapCurrencyChangeMidMonthFailsClosed(t *testing.T) {
	f := newFixture(t, Config{})
	f.mustHold("a", usd(1000))
	euro, err := New(f.rdb, Config{Caps: capsOf(Stripe, eur(10000)), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = euro.Hold(ctx, HoldRequest{HoldID: "b", Principal: alice, Provider: Stripe, Amount: eur(100)})
	wantCode(t, err, fault.Internal)
	_, err = euro.Status(ctx, alice, Stripe)
	wantCode(t, err, fault.Internal)
	f.wantMoney(0, 1000)
}

func TestParseCapFlag(t *testing.T) {
	tests := []struct {
		in       string
		provider string
		minor    int64
		ok       bool
	}{
		{"stripe=50.00", Stripe, 5000, true},
		{"cloudflare=100", Cloudflare, 10000, true},
		{"Stripe=0.01", Stripe, 1, true},
		{"stripe=.5", "", 0, false},
		{"stripe=5.", "", 0, false},
		{"stripe=50.001", "", 0, false},
		{"stripe=0", "", 0, false},
		{"stripe=0.00", "", 0, false},
		{"stripe=-5", "", 0, false},
		{"stripe=+5", "", 0, false},
		{"stripe=1e3", "", 0, false},
		{"stripe= 5", "", 0, false},
		{"stripe=5 ", "", 0, false},
		{"stripe=five", "", 0, false},
		{"stripe=", "", 0, false},
		{"stripe", "", 0, false},
		{"=50", "", 0, false},
		{"aws=50", "", 0, false},
		{"stripe=50=60", "", 0, false},
		{" stripe=50", "", 0, false},
		{"stripe=92233720368547758.07", "", 0, false},
		{"stripe=99999999999999999999", "", 0, false},
		{"stripe=10000000000000.01", "", 0, false},
		{"stripe=10000000000000.00", Stripe, MaxMinor, true},
		{"stripe=50,00", "", 0, false},
		{"stripe=５0", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, m, err := ParseCapFlag(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseCapFlag(%q) = %q, %v, %v", tt.in, p, m, err)
			}
			if tt.ok && (p != tt.provider || m != usd(tt.minor)) {
				t.Fatalf("ParseCapFlag(%q) = %q, %v; want %q, %d cents", tt.in, p, m, tt.provider, tt.minor)
			}
			if !tt.ok && !strings.Contains(err.Error(), "--cap stripe=50.00") {
				t.Fatalf("error %q does not show how to write it", err)
			}
		})
	}
}

func FuzzParseCapFlag(f *testing.F) {
	for _, s := range []string{"stripe=50.00", "cloudflare=1", "stripe=0", "stripe=-1", "stripe=1.001",
		"aws=5", "stripe=99999999999999999999", "STRIPE=1.5", "=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, m, err := ParseCapFlag(in)
		if err != nil {
			return
		}
		if !KnownProvider(p) || m.Currency != "usd" || m.Minor <= 0 || m.Minor > MaxMinor {
			t.Fatalf("ParseCapFlag(%q) accepted %q %+v", in, p, m)
		}
		// What it accepts round-trips through its canonical form.
		p2, m2, err := ParseCapFlag(p + "=" + m.Decimal())
		if err != nil || p2 != p || m2 != m {
			t.Fatalf("ParseCapFlag(%q) = %q %v, but its canonical form gives %q %v %v", in, p, m, p2, m2, err)
		}
		// And a ledger accepts it as a cap.
		if err := (Config{Caps: capsOf(p, m)}).Validate(); err != nil {
			t.Fatalf("Config refuses the cap %q parsed: %v", in, err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"all set", Config{Prefix: "tg-test", DefaultCap: eur(5000), Caps: capsOf(Stripe, usd(1)),
			HoldTTL: time.Minute, Timeout: time.Second, Retention: 48 * time.Hour}, true},
		{"prefix with a brace", Config{Prefix: "tg{x}"}, false},
		{"negative default cap", Config{DefaultCap: usd(-1)}, false},
		{"default cap without currency", Config{DefaultCap: money.Money{Minor: 100}}, false},
		{"cap for an unknown provider", Config{Caps: capsOf("aws", usd(100))}, false},
		{"zero provider cap", Config{Caps: capsOf(Stripe, usd(0))}, false},
		{"provider cap over the maximum", Config{Caps: capsOf(Stripe, usd(MaxMinor+1))}, false},
		{"negative hold TTL", Config{HoldTTL: -time.Second}, false},
		{"sub-millisecond hold TTL", Config{HoldTTL: time.Microsecond}, false},
		{"negative timeout", Config{Timeout: -1}, false},
		{"short retention", Config{Retention: time.Minute}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New without a client succeeded")
	}
}
