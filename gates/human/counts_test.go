package human

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// CountPending counts pending approvals whose TTL has not passed, on a
// single Redis and on a Cluster (SCAN on every master), and says when it
// stopped at its bound.
func TestCountPending(t *testing.T) {
	for name, f := range map[string]func(t *testing.T) *fixture{
		"single":  newFixture,
		"cluster": func(t *testing.T) *fixture { return newFixtureOn(t, testkit.StartCluster(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			f := f(t)
			ctx := context.Background()
			var ids []string
			for range 3 {
				ids = append(ids, f.create(purchase(call)).ID)
			}
			if _, err := f.approvals.Decide(ctx, ids[0], alice, false, "page"); err != nil {
				t.Fatal(err)
			}
			c, err := f.approvals.CountPending(ctx, 100)
			if err != nil || c.Pending != 2 || c.Scanned != 3 || c.Truncated {
				t.Fatalf("CountPending = %+v, %v; want 2 pending of 3, not truncated", c, err)
			}
			if c, err = f.approvals.CountPending(ctx, 1); err != nil || !c.Truncated || c.Scanned != 1 || c.Pending > 1 {
				t.Fatalf("CountPending bounded to 1 = %+v, %v; want truncated after 1", c, err)
			}
			f.clock.Advance(DefaultTTL + time.Second)
			if c, err = f.approvals.CountPending(ctx, 100); err != nil || c.Pending != 0 {
				t.Fatalf("after the TTL CountPending = %+v, %v; want none pending", c, err)
			}
		})
	}
}
