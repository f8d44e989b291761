package spend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

func TestHoldCommitRelease(t *testing.T) {
	ctx := context.Background()
	commit := func(f *fixture, id string, c int64) error { return f.ledger.Commit(ctx, alice, id, usd(c)) }
	release := func(f *fixture, id string) error { return f.ledger.Release(ctx, alice, id, "provider declined") }
	tests := []struct {
		name string
		// run performs the steps; the last step's error is checked.
		run         func(f *fixture) error
		code        fault.Code
		spent, held int64
		state       State // of hold "h1"
	}{
		{"hold counts as held", func(f *fixture) error {
			_, err := f.hold("h1", usd(1044))
			return err
		}, "", 0, 1044, StateHeld},
		{"commit of the full amount is spent", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1", 1044)
		}, "", 1044, 0, StateCommitted},
		{"commit of less frees the rest", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1", 999)
		}, "", 999, 0, StateCommitted},
		{"commit of zero spends nothing", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1", 0)
		}, "", 0, 0, StateCommitted},
		{"release frees everything", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return release(f, "h1")
		}, "", 0, 0, StateReleased},
		{"second commit with the same actual is ok", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			wantCode(f.t, commit(f, "h1", 1000), "")
			return commit(f, "h1", 1000)
		}, "", 1000, 0, StateCommitted},
		{"second commit with another actual conflicts", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			wantCode(f.t, commit(f, "h1", 1000), "")
			return commit(f, "h1", 1044)
		}, HoldConflict, 1000, 0, StateCommitted},
		{"second release is ok", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			wantCode(f.t, release(f, "h1"), "")
			return release(f, "h1")
		}, "", 0, 0, StateReleased},
		{"release of a committed hold is refused", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			wantCode(f.t, commit(f, "h1", 1044), "")
			return release(f, "h1")
		}, HoldConflict, 1044, 0, StateCommitted},
		{"commit of a released hold is refused", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			wantCode(f.t, release(f, "h1"), "")
			return commit(f, "h1", 1044)
		}, HoldConflict, 0, 0, StateReleased},
		{"commit of more than held is refused and the hold stays", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1", 1045)
		}, InvalidAmount, 0, 1044, StateHeld},
		{"commit in another currency is refused", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return f.ledger.Commit(ctx, alice, "h1", eur(1000))
		}, InvalidAmount, 0, 1044, StateHeld},
		{"negative commit is refused", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1", -1)
		}, InvalidAmount, 0, 1044, StateHeld},
		{"commit of an unknown hold", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "nope", 1)
		}, HoldNotFound, 0, 1044, StateHeld},
		{"release of an unknown hold", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return release(f, "nope")
		}, HoldNotFound, 0, 1044, StateHeld},
		{"another principal cannot commit alice's hold", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return f.ledger.Commit(ctx, bob, "h1", usd(1044))
		}, HoldNotFound, 0, 1044, StateHeld},
		{"another principal cannot release alice's hold", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return f.ledger.Release(ctx, bob, "h1", "")
		}, HoldNotFound, 0, 1044, StateHeld},
		{"malformed hold id", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			return commit(f, "h1}{x", 1)
		}, HoldNotFound, 0, 1044, StateHeld},
		{"commit after the TTL is refused as expired", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			f.clock.Advance(DefaultHoldTTL)
			return commit(f, "h1", 1044)
		}, HoldExpired, 0, 0, StateExpired},
		{"commit a millisecond before the TTL passes", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			f.clock.Advance(DefaultHoldTTL - time.Millisecond)
			return commit(f, "h1", 1044)
		}, "", 1044, 0, StateCommitted},
		{"release after the TTL reconciles", func(f *fixture) error {
			f.mustHold("h1", usd(1044))
			f.clock.Advance(DefaultHoldTTL + time.Hour)
			return release(f, "h1")
		}, "", 0, 0, StateReleased},
		{"two holds add up, one commit and one release", func(f *fixture) error {
			f.mustHold("h1", usd(1000))
			f.mustHold("h2", usd(2000))
			wantCode(f.t, commit(f, "h2", 1500), "")
			return release(f, "h1")
		}, "", 1500, 0, StateReleased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			wantCode(t, tt.run(f), tt.code)
			f.wantMoney(tt.spent, tt.held)
			h, err := f.ledger.Get(ctx, alice, "h1")
			if err != nil {
				t.Fatal(err)
			}
			if h.State != tt.state {
				t.Fatalf("hold state %s, want %s", h.State, tt.state)
			}
		})
	}
}

func TestHoldRecord(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	now := f.clock.Now()
	budgets := []Budget{{"child", usd(5000)}, {"parent", usd(8000)}}
	h := f.mustHold("h1", usd(1044), budgets...)
	want := Hold{ID: "h1", Principal: alice, Provider: Stripe, Amount: usd(1044), Month: "2026-11",
		Budgets: budgets, Tool: "domain_register", Description: "example.com", State: StateHeld,
		Created: now, Expires: now.Add(DefaultHoldTTL)}
	if !equalHold(h, want) {
		t.Fatalf("hold\n%+v, want\n%+v", h, want)
	}
	f.clock.Advance(time.Minute)
	wantCode(t, f.ledger.Commit(ctx, alice, "h1", usd(1000)), "")
	got, err := f.ledger.Get(ctx, alice, "h1")
	if err != nil {
		t.Fatal(err)
	}
	want.State, want.Actual, want.Settled = StateCommitted, usd(1000), now.Add(time.Minute)
	if !equalHold(got, want) {
		t.Fatalf("committed hold\n%+v, want\n%+v", got, want)
	}
	// A settled record is kept for the retention window, then goes.
	if ttl := f.rdb.PTTL(ctx, f.ledger.keys.hold(alice, "h1")).Val(); ttl <= DefaultRetention-time.Minute || ttl > DefaultRetention {
		t.Fatalf("settled hold TTL %v, want about %v", ttl, DefaultRetention)
	}
}

func equalHold(a, b Hold) bool {
	if len(a.Budgets) != len(b.Budgets) {
		return false
	}
	for i := range a.Budgets {
		if a.Budgets[i] != b.Budgets[i] {
			return false
		}
	}
	a.Budgets, b.Budgets = nil, nil
	return a.ID == b.ID && a.Principal == b.Principal && a.Provider == b.Provider && a.Amount == b.Amount &&
		a.Month == b.Month && a.Tool == b.Tool && a.Description == b.Description && a.State == b.State &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && a.Settled.Equal(b.Settled) &&
		a.Reconciled.Equal(b.Reconciled) && a.Actual == b.Actual && a.Reason == b.Reason
}

func TestHoldRefusesBadInput(t *testing.T) {
	ok := HoldRequest{HoldID: "h1", Principal: alice, Provider: Stripe, Amount: usd(100)}
	tests := []struct {
		name string
		edit func(r *HoldRequest)
		code fault.Code
	}{
		{"zero amount", func(r *HoldRequest) { r.Amount = usd(0) }, InvalidAmount},
		{"negative amount", func(r *HoldRequest) { r.Amount = usd(-100) }, InvalidAmount},
		{"amount above the ledger maximum", func(r *HoldRequest) { r.Amount = usd(MaxMinor + 1) }, InvalidAmount},
		{"amount at int64 overflow", func(r *HoldRequest) { r.Amount = usd(1<<63 - 1) }, InvalidAmount},
		{"unsupported currency", func(r *HoldRequest) { r.Amount = money.Money{Minor: 100, Currency: "btc"} }, InvalidAmount},
		{"no currency", func(r *HoldRequest) { r.Amount = money.Money{Minor: 100} }, InvalidAmount},
		{"currency other than the cap's", func(r *HoldRequest) { r.Amount = eur(100) }, InvalidAmount},
		{"budget in another currency", func(r *HoldRequest) { r.Budgets = []Budget{{"s1", eur(1000)}} }, InvalidAmount},
		{"negative budget", func(r *HoldRequest) { r.Budgets = []Budget{{"s1", usd(-1)}} }, InvalidAmount},
		{"unknown provider", func(r *HoldRequest) { r.Provider = "aws" }, fault.InvalidArgument},
		{"provider in capitals", func(r *HoldRequest) { r.Provider = "Stripe" }, fault.InvalidArgument},
		{"no principal", func(r *HoldRequest) { r.Principal = "" }, fault.InvalidArgument},
		{"principal with a control character", func(r *HoldRequest) { r.Principal = "user:a\x00b" }, fault.InvalidArgument},
		{"hold id with braces", func(r *HoldRequest) { r.HoldID = "h}{1" }, fault.InvalidArgument},
		{"hold id too long", func(r *HoldRequest) { r.HoldID = strings.Repeat("h", 129) }, fault.InvalidArgument},
		{"budget session named twice", func(r *HoldRequest) { r.Budgets = []Budget{{"s1", usd(1000)}, {"s1", usd(1000)}} }, fault.InvalidArgument},
		{"budget session with a comma", func(r *HoldRequest) { r.Budgets = []Budget{{"s1,s2", usd(1000)}} }, fault.InvalidArgument},
		{"budget session with a colon", func(r *HoldRequest) { r.Budgets = []Budget{{"s1:stripe", usd(1000)}} }, fault.InvalidArgument},
		{"too many budgets", func(r *HoldRequest) {
			for i := range maxBudgets + 1 {
				r.Budgets = append(r.Budgets, Budget{Session: "s" + string(rune('a'+i)), Max: usd(1000)})
			}
		}, fault.InvalidArgument},
		{"description with an escape sequence", func(r *HoldRequest) { r.Description = "ok\x1b[2J" }, fault.InvalidArgument},
		{"valid request", func(r *HoldRequest) {}, ""},
		{"upper-case currency is the same currency", func(r *HoldRequest) { r.Amount.Currency = "USD" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			req := ok
			tt.edit(&req)
			h, err := f.ledger.Hold(context.Background(), req)
			wantCode(t, err, tt.code)
			if tt.code != "" {
				if h.ID != "" {
					t.Fatalf("refused hold returned %+v", h)
				}
				if !strings.Contains(fault.PublicOf(err), "nothing was charged") {
					t.Fatalf("public message %q does not say nothing was charged", fault.PublicOf(err))
				}
				f.wantMoney(0, 0)
			}
		})
	}
}

func TestHoldAssignsAnIDWhenNoneIsGiven(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.mustHold("", usd(100))
	b := f.mustHold("", usd(100))
	if a.ID == "" || a.ID == b.ID || !validHoldID(a.ID) {
		t.Fatalf("assigned ids %q and %q", a.ID, b.ID)
	}
	f.wantMoney(0, 200)
}
