package compose

import (
	"context"

	"github.com/tollgate-dev/tollgate/internal/observe"
)

// Bounds of one read of the state gauges: the most recently active
// principals whose holds are counted, and the approvals looked at.
const (
	stateMaxPrincipals = 10000
	stateMaxApprovals  = 10000
)

// watchState adds tollgate_holds{state} and tollgate_approvals_pending,
// read from the ledger and the approvals store when /metrics is scraped
// (at most every 15 s, each read bounded).
func (a *App) watchState() {
	ledger, approvals := a.money.ledger, a.gates.approvals
	a.Observe.WatchState(observe.StateConfig{
		Holds: func(ctx context.Context) (int64, int64, bool, error) {
			c, err := ledger.CountHolds(ctx, stateMaxPrincipals)
			return c.Held, c.Expired, c.Truncated, err
		},
		Pending: func(ctx context.Context) (int64, bool, error) {
			c, err := approvals.CountPending(ctx, stateMaxApprovals)
			return c.Pending, c.Truncated, err
		},
	})
}
