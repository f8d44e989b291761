package spend

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// HoldCount is how many unsettled holds the ledger has, for the
// tollgate_holds gauge.
type HoldCount struct {
	// Held: open holds whose TTL has not passed.
	Held int64
	// Expired: holds whose TTL passed without a commit or release, listed
	// as stale or due to be (reconcile them: docs/operations.md).
	Expired int64
	// Principals is how many principals were read; Truncated says the
	// principals index held more than the limit, and the least recently
	// active ones were not counted.
	Principals int
	Truncated  bool
}

// countBatch is how many principals one pipelined round trip reads.
const countBatch = 256

// CountHolds counts the unsettled holds of the most recently active
// principals, at most maxPrincipals of them (the rest are left out and
// Truncated is set). It only reads: three counts per principal, pipelined
// by countBatch, so its cost is bounded whatever the ledger holds.
func (l *Ledger) CountHolds(ctx context.Context, maxPrincipals int) (HoldCount, error) {
	if maxPrincipals <= 0 {
		return HoldCount{}, invalid("maxPrincipals must be positive.")
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	// One more than asked for tells whether the index has more.
	ps, err := l.rdb.ZRevRange(ctx, l.keys.principals(), 0, int64(maxPrincipals)).Result()
	if err != nil {
		return HoldCount{}, unavailable("count holds", err, msgReadDown)
	}
	var out HoldCount
	if len(ps) > maxPrincipals {
		ps, out.Truncated = ps[:maxPrincipals], true
	}
	now := strconv.FormatInt(ms(l.cfg.Now()), 10)
	for start := 0; start < len(ps); start += countBatch {
		batch := ps[start:min(start+countBatch, len(ps))]
		type counts struct{ held, due, stale *redis.IntCmd }
		cs := make([]counts, 0, len(batch))
		_, err := l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, p := range batch {
				if !validPrincipal(p) {
					continue
				}
				cs = append(cs, counts{
					held:  pl.ZCount(ctx, l.keys.open(p), "("+now, "+inf"),
					due:   pl.ZCount(ctx, l.keys.open(p), "-inf", now),
					stale: pl.ZCard(ctx, l.keys.stale(p)),
				})
			}
			return nil
		})
		if err != nil {
			return HoldCount{}, unavailable("count holds", err, msgReadDown)
		}
		for _, c := range cs {
			out.Held += c.held.Val()
			out.Expired += c.due.Val() + c.stale.Val()
			out.Principals++
		}
	}
	return out, nil
}
