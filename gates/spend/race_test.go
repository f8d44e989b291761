package spend

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// 200 agents race to hold the same price against one cap, through two
// replicas (two Ledgers with their own connection pools on one Redis).
// Exactly floor(cap/price) win, and nothing is ever over the cap.
func TestRacingHoldsStopAtTheCap(t *testing.T) {
	tests := []struct {
		name       string
		cap, price int64
	}{
		{"price does not divide the cap", 10000, 333},
		{"price divides the cap", 10000, 500},
		{"price above the cap", 10000, 10001},
		{"one cent against one cent", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := Config{Caps: map[string]money.Money{Stripe: usd(tt.cap)}}
			opt := testkit.RedisOptions(t)
			f := newFixtureOn(t, clientFor(t, opt), cfg)
			replica, err := New(clientFor(t, opt), Config{Caps: cfg.Caps, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ledgers := []*Ledger{f.ledger, replica}

			const agents = 200
			var won atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			ids := make(chan string, agents)
			for i := range agents {
				wg.Go(func() {
					<-start
					id := fmt.Sprintf("agent-%d", i)
					h, err := ledgers[i%2].Hold(ctx, HoldRequest{HoldID: id, Principal: alice, Provider: Stripe, Amount: usd(tt.price)})
					switch {
					case err == nil && h.State == StateHeld:
						won.Add(1)
						ids <- id
					case fault.CodeOf(err) != CapExceeded:
						t.Errorf("agent %d: %v", i, err)
					}
				})
			}
			close(start)
			wg.Wait()
			close(ids)
			want := tt.cap / tt.price
			if won.Load() != want {
				t.Fatalf("%d holds succeeded, want exactly %d", won.Load(), want)
			}
			f.wantMoney(0, want*tt.price)

			// The winners commit, concurrently, through either replica.
			var n int
			for id := range ids {
				l := ledgers[n%2]
				n++
				wg.Go(func() {
					if err := l.Commit(ctx, alice, id, usd(tt.price)); err != nil {
						t.Errorf("commit %s: %v", id, err)
					}
				})
			}
			wg.Wait()
			f.wantMoney(want*tt.price, 0)
			if s := f.status(); s.Spent.Minor+s.Held.Minor > tt.cap {
				t.Fatalf("spent %s + held %s is over the cap %s", s.Spent, s.Held, s.Cap)
			}
			// And the cap stays closed.
			if _, err := f.hold("late", usd(tt.cap-want*tt.price+1)); fault.CodeOf(err) != CapExceeded {
				t.Fatalf("a hold past the remainder: %v", err)
			}
		})
	}
}

// clientFor returns a client on opt, closed when the test ends.
func clientFor(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
