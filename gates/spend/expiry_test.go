package spend

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// A process holds, then crashes before it commits or releases. Once the TTL
// passes, the principal's next hold frees the amount, and the crashed hold
// is listed for reconciliation until someone settles it.
func TestHoldExpiresAfterACrash(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	crashed := f.mustHold("crashed", usd(9000), Budget{"s", usd(9500)})
	if _, err := f.hold("blocked", usd(2000)); fault.CodeOf(err) != CapExceeded {
		t.Fatalf("hold while the crashed hold is live: %v", err)
	}

	f.clock.Advance(DefaultHoldTTL)
	// Nothing has expired it yet: it is listed as stale while still open.
	if h, err := f.ledger.Get(ctx, alice, "crashed"); err != nil || h.State != StateHeld || !h.Stale(f.clock.Now()) {
		t.Fatalf("before the next call: %+v, %v", h, err)
	}
	// The next hold reaps it and gets the whole cap.
	f.mustHold("next", usd(8000), Budget{"s", usd(9500)})
	f.wantMoney(0, 8000)
	if spent, held, _ := f.budgetOf("s", usd(9500)); spent.Minor != 0 || held.Minor != 8000 {
		t.Fatalf("budget after the reap: spent %s held %s", spent, held)
	}
	got, err := f.ledger.Get(ctx, alice, "crashed")
	if err != nil || got.State != StateExpired || !got.Settled.Equal(crashed.Expires) {
		t.Fatalf("crashed hold after the reap: %+v, %v", got, err)
	}

	for _, filter := range []HoldFilter{{Principal: alice, Stale: true}, {Stale: true}} {
		stale, err := f.ledger.Holds(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) != 1 || stale[0].ID != "crashed" || stale[0].State != StateExpired {
			t.Fatalf("Holds(%+v) = %+v, want the crashed hold", filter, stale)
		}
	}
	all, err := f.ledger.Holds(ctx, HoldFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := holdIDs(all); !slices.Equal(ids, []string{"crashed", "next"}) {
		t.Fatalf("unsettled holds %v, want crashed then next", ids)
	}

	// The crashed process comes back and tries to commit: refused.
	wantCode(t, f.ledger.Commit(ctx, alice, "crashed", usd(9000)), HoldExpired)
	f.wantMoney(0, 8000)
	// Its replay is refused as well: an expired hold never holds again.
	if _, err := f.hold("crashed", usd(9000), Budget{"s", usd(9500)}); fault.CodeOf(err) != HoldExpired {
		t.Fatalf("replay of the crashed hold: %v", err)
	}
	f.wantMoney(0, 8000)
}

func TestReconcilingStaleHolds(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		settle      func(f *fixture) error
		code        fault.Code
		spent, held int64
		state       State
		stale       bool
	}{
		{"release says nothing was charged", func(f *fixture) error {
			return f.ledger.Release(ctx, alice, "h", "provider never called")
		}, "", 0, 1000, StateReleased, false},
		{"reconcile records what the provider took", func(f *fixture) error {
			return f.ledger.Reconcile(ctx, alice, "h", usd(2500), "invoice 42")
		}, "", 2500, 1000, StateCommitted, false},
		{"reconcile is idempotent", func(f *fixture) error {
			wantCode(f.t, f.ledger.Reconcile(ctx, alice, "h", usd(2500), "invoice 42"), "")
			return f.ledger.Reconcile(ctx, alice, "h", usd(2500), "invoice 42")
		}, "", 2500, 1000, StateCommitted, false},
		{"reconcile with another amount conflicts", func(f *fixture) error {
			wantCode(f.t, f.ledger.Reconcile(ctx, alice, "h", usd(2500), ""), "")
			return f.ledger.Reconcile(ctx, alice, "h", usd(2000), "")
		}, HoldConflict, 2500, 1000, StateCommitted, false},
		{"reconcile above the hold is refused", func(f *fixture) error {
			return f.ledger.Reconcile(ctx, alice, "h", usd(3001), "")
		}, InvalidAmount, 0, 1000, StateExpired, true},
		{"commit is still refused", func(f *fixture) error {
			return f.ledger.Commit(ctx, alice, "h", usd(3000))
		}, HoldExpired, 0, 1000, StateExpired, true},
		{"reconcile after a release conflicts", func(f *fixture) error {
			wantCode(f.t, f.ledger.Release(ctx, alice, "h", ""), "")
			return f.ledger.Reconcile(ctx, alice, "h", usd(3000), "")
		}, HoldConflict, 0, 1000, StateReleased, false},
		{"release after a reconcile conflicts", func(f *fixture) error {
			wantCode(f.t, f.ledger.Reconcile(ctx, alice, "h", usd(3000), ""), "")
			return f.ledger.Release(ctx, alice, "h", "")
		}, HoldConflict, 3000, 1000, StateCommitted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			f.mustHold("h", usd(3000))
			wantCode(t, f.ledger.Reconcile(ctx, alice, "h", usd(3000), ""), HoldConflict) // still open
			f.clock.Advance(DefaultHoldTTL + time.Minute)
			f.mustHold("other", usd(1000))
			wantCode(t, tt.settle(f), tt.code)
			f.wantMoney(tt.spent, tt.held)
			h, err := f.ledger.Get(ctx, alice, "h")
			if err != nil || h.State != tt.state {
				t.Fatalf("hold %+v, %v; want state %s", h, err, tt.state)
			}
			if tt.state != StateExpired && h.Reconciled.IsZero() {
				t.Fatalf("settled stale hold has no reconciliation time: %+v", h)
			}
			stale, err := f.ledger.Holds(ctx, HoldFilter{Stale: true})
			if err != nil {
				t.Fatal(err)
			}
			if listed := len(stale) == 1; listed != tt.stale {
				t.Fatalf("stale list %v, want listed=%v", holdIDs(stale), tt.stale)
			}
		})
	}
}

func TestReapExpired(t *testing.T) {
	f := newFixture(t, Config{Caps: capsOf(Stripe, usd(1_000_000))})
	ctx := context.Background()
	const n = 2*reapLimit + 7
	for i := range n {
		f.mustHold(holdName(i), usd(100))
	}
	f.mustHold("late", usd(100))
	f.clock.Advance(DefaultHoldTTL)
	f.mustHold("fresh", usd(100)) // reaps the first reapLimit
	got, err := f.ledger.ReapExpired(ctx, alice)
	if err != nil || got != n+1-reapLimit {
		t.Fatalf("ReapExpired = %d, %v; want %d", got, err, n+1-reapLimit)
	}
	f.wantMoney(0, 100)
	if got, err := f.ledger.ReapExpired(ctx, alice); err != nil || got != 0 {
		t.Fatalf("second ReapExpired = %d, %v", got, err)
	}
	stale, err := f.ledger.Holds(ctx, HoldFilter{Principal: alice, Stale: true, Limit: 5})
	if err != nil || len(stale) != 5 {
		t.Fatalf("limited stale list: %d, %v", len(stale), err)
	}
	_, err = f.ledger.Holds(ctx, HoldFilter{Limit: -1})
	wantCode(t, err, fault.InvalidArgument)
}

func TestHoldsAcrossPrincipals(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	principals := []string{alice, bob, "user:m}{x", "spiffe://example.org/agent/{deployer}"}
	for i, p := range principals {
		f.clock.Advance(time.Millisecond)
		if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "h", Principal: p, Provider: Stripe, Amount: usd(int64(100 + i))}); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, f.ledger.Commit(ctx, bob, "h", usd(1)), "")
	all, err := f.ledger.Holds(ctx, HoldFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, h := range all {
		who = append(who, h.Principal)
	}
	if want := []string{alice, principals[2], principals[3]}; !slices.Equal(who, want) {
		t.Fatalf("open holds of %v, want %v (oldest first, committed ones left out)", who, want)
	}
	for _, p := range principals {
		mine, err := f.ledger.Holds(ctx, HoldFilter{Principal: p})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range mine {
			if h.Principal != p {
				t.Fatalf("%q lists a hold of %q", p, h.Principal)
			}
		}
	}
	if none, err := f.ledger.Holds(ctx, HoldFilter{Principal: "user:nobody"}); err != nil || len(none) != 0 {
		t.Fatalf("holds of nobody: %v, %v", none, err)
	}
}

func holdIDs(hs []Hold) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}
