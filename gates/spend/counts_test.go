package spend

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// CountHolds counts open holds as held until their TTL passes and as
// expired after (reaped or not), leaves settled ones out, works on a
// Cluster, and stops at its bound of principals, saying so.
func TestCountHolds(t *testing.T) {
	for name, f := range map[string]func(t *testing.T) *fixture{
		"single":  func(t *testing.T) *fixture { return newFixture(t, Config{}) },
		"cluster": func(t *testing.T) *fixture { return newFixtureOn(t, testkit.StartCluster(t), Config{}) },
	} {
		t.Run(name, func(t *testing.T) {
			f := f(t)
			ctx := context.Background()
			f.mustHold("a1", usd(100))
			f.mustHold("a2", usd(100))
			if err := f.ledger.Commit(ctx, alice, "a2", usd(100)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "b1", Principal: bob, Provider: Stripe, Amount: usd(50)}); err != nil {
				t.Fatal(err)
			}
			c, err := f.ledger.CountHolds(ctx, 100)
			if err != nil || c.Held != 2 || c.Expired != 0 || c.Principals != 2 || c.Truncated {
				t.Fatalf("CountHolds = %+v, %v; want 2 held of 2 principals", c, err)
			}
			if c, err = f.ledger.CountHolds(ctx, 1); err != nil || !c.Truncated || c.Principals != 1 || c.Held != 1 {
				t.Fatalf("CountHolds bounded to 1 principal = %+v, %v", c, err)
			}
			f.clock.Advance(DefaultHoldTTL + time.Second)
			if c, err = f.ledger.CountHolds(ctx, 100); err != nil || c.Held != 0 || c.Expired != 2 {
				t.Fatalf("after the TTL CountHolds = %+v, %v; want 2 expired", c, err)
			}
			if _, err := f.ledger.ReapExpired(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if c, err = f.ledger.CountHolds(ctx, 100); err != nil || c.Held != 0 || c.Expired != 2 {
				t.Fatalf("after reaping CountHolds = %+v, %v; want still 2 expired (stale, to reconcile)", c, err)
			}
		})
	}
}
