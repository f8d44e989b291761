package spend

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// A task budget along a two-level chain: the parent session "p" may spend
// 50.00, its child "c" 30.00. A child's hold names both budgets, innermost
// first, so it counts against the parent's too.
func TestTaskBudgetsAlongTheChain(t *testing.T) {
	ctx := context.Background()
	parent := Budget{"p", usd(5000)}
	child := Budget{"c", usd(3000)}
	tests := []struct {
		name  string
		run   func(f *fixture) error
		code  fault.Code
		blame string // the session the refusal must name
		// spent+held under each budget afterwards
		parentUsed, childUsed int64
	}{
		{"child's hold counts against the parent too", func(f *fixture) error {
			_, err := f.hold("c1", usd(1000), child, parent)
			return err
		}, "", "", 1000, 1000},
		{"child cannot exceed its own budget", func(f *fixture) error {
			_, err := f.hold("c1", usd(3001), child, parent)
			return err
		}, BudgetExceeded, "c", 0, 0},
		{"child cannot exceed the parent's remainder", func(f *fixture) error {
			f.mustHold("p1", usd(4000), parent)
			_, err := f.hold("c1", usd(1001), child, parent)
			return err
		}, BudgetExceeded, "p", 4000, 0},
		{"child may take exactly the parent's remainder", func(f *fixture) error {
			f.mustHold("p1", usd(4000), parent)
			_, err := f.hold("c1", usd(1000), child, parent)
			return err
		}, "", "", 5000, 1000},
		{"parent cannot spend what its child holds", func(f *fixture) error {
			f.mustHold("c1", usd(3000), child, parent)
			_, err := f.hold("p1", usd(2001), parent)
			return err
		}, BudgetExceeded, "p", 3000, 3000},
		{"two children share the parent", func(f *fixture) error {
			f.mustHold("c1", usd(3000), child, parent)
			_, err := f.hold("d1", usd(2001), Budget{"d", usd(3000)}, parent)
			return err
		}, BudgetExceeded, "p", 3000, 3000},
		{"committing less gives the rest back to both", func(f *fixture) error {
			f.mustHold("c1", usd(3000), child, parent)
			wantCode(f.t, f.ledger.Commit(ctx, alice, "c1", usd(1200)), "")
			_, err := f.hold("c2", usd(1800), child, parent)
			return err
		}, "", "", 3000, 3000},
		{"release gives everything back to both", func(f *fixture) error {
			f.mustHold("c1", usd(3000), child, parent)
			wantCode(f.t, f.ledger.Release(ctx, alice, "c1", ""), "")
			return nil
		}, "", "", 0, 0},
		{"spent counts as much as held", func(f *fixture) error {
			f.mustHold("c1", usd(2500), child, parent)
			wantCode(f.t, f.ledger.Commit(ctx, alice, "c1", usd(2500)), "")
			_, err := f.hold("c2", usd(501), child, parent)
			return err
		}, BudgetExceeded, "c", 2500, 2500},
		{"the monthly cap still binds below the budgets", func(f *fixture) error {
			f.mustHold("x", usd(9000))
			_, err := f.hold("c1", usd(1001), child, parent)
			return err
		}, CapExceeded, "", 0, 0},
		{"a zero budget refuses everything", func(f *fixture) error {
			_, err := f.hold("z1", usd(1), Budget{"z", usd(0)}, parent)
			return err
		}, BudgetExceeded, "z", 0, 0},
		{"a budget kept in another currency refuses the hold", func(f *fixture) error {
			f.mustHold("c1", usd(100), child, parent)
			// The same session's budget now arrives in euros.
			_, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "c2", Principal: alice, Provider: Stripe,
				Amount: usd(100), Budgets: []Budget{{"c", eur(3000)}}})
			return err
		}, InvalidAmount, "", 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			err := tt.run(f)
			wantCode(t, err, tt.code)
			if tt.blame != "" && !strings.Contains(fault.PublicOf(err), "session "+tt.blame+" ") {
				t.Fatalf("refusal %q does not name session %s", fault.PublicOf(err), tt.blame)
			}
			for _, b := range []struct {
				Budget
				used int64
			}{{parent, tt.parentUsed}, {child, tt.childUsed}} {
				spent, held, left := f.budgetOf(b.Session, b.Max)
				if spent.Minor+held.Minor != b.used || left.Minor != max(0, b.Max.Minor-b.used) {
					t.Fatalf("budget %s: spent %s held %s left %s, want %d used", b.Session, spent, held, left, b.used)
				}
			}
		})
	}
}

// Budgets are per provider: a Cloudflare hold does not touch the Stripe
// budget of the same session.
func TestTaskBudgetsArePerProvider(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	b := Budget{"s", usd(1000)}
	if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "cf", Principal: alice, Provider: Cloudflare,
		Amount: usd(1000), Budgets: []Budget{b}}); err != nil {
		t.Fatal(err)
	}
	f.mustHold("st", usd(1000), b)
	if _, err := f.hold("st2", usd(1), b); fault.CodeOf(err) != BudgetExceeded {
		t.Fatalf("third hold: %v", err)
	}
}
