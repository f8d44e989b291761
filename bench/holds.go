package bench

import (
	"context"
	"fmt"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// holds measures Hold+Commit pairs (gates/spend, the Lua ledger) on the
// App's Redis client: 64 goroutines contending for one principal's cap,
// then 64 goroutines each on its own principal's cap.
func (r *runner) holds(ctx context.Context) error {
	// A cap no run can reach: the point is the ledger's cost, not refusals.
	ledger, err := spend.New(r.sys.app.Redis.Client, spend.Config{DefaultCap: money.USD(1_000_000_000)})
	if err != nil {
		return err
	}
	one := money.USD(1)
	pair := func(ctx context.Context, principal string) error {
		h, err := ledger.Hold(ctx, spend.HoldRequest{Principal: principal, Provider: "cloudflare", Amount: one, Tool: "bench"})
		if err != nil {
			return err
		}
		return ledger.Commit(ctx, principal, h.ID, one)
	}
	shared := func(ctx context.Context, _, _ int) error { return pair(ctx, "user:bench-holds@example.com") }
	distinct := func(ctx context.Context, w, _ int) error {
		return pair(ctx, fmt.Sprintf("user:bench-holds-%02d@example.com", w))
	}
	w := r.o.HoldWorkers
	for _, c := range []struct {
		how string
		op  func(context.Context, int, int) error
	}{
		{fmt.Sprintf("%d goroutines, one cap", w), shared},
		{fmt.Sprintf("%d goroutines, %d principals' caps", w, w), distinct},
	} {
		if _, err := drive(ctx, 4*w, w, c.op); err != nil {
			return err
		}
		s, err := drive(ctx, r.o.Holds, w, c.op)
		if err != nil {
			return err
		}
		r.rows = append(r.rows, sampleRow("hold + commit", c.how, s, "per pair: Hold (pipelined ZADD + EVALSHA) then Commit (EVALSHA); latency is the pair"))
	}
	return nil
}
