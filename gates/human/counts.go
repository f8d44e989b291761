package human

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// PendingCount is how many approvals wait for a human, for the
// tollgate_approvals_pending gauge.
type PendingCount struct {
	Pending int64
	// Scanned is how many approvals were looked at; Truncated says there
	// were more than the limit and the rest were not counted.
	Scanned   int
	Truncated bool
}

// scanBatch is the COUNT hint of one SCAN and the size of one pipelined read.
const scanBatch = 500

// CountPending counts the approvals still waiting for a decision whose
// TTL has not passed. It walks the id → principal records with SCAN (on
// every master of a Cluster) and reads the status of at most maxScanned
// approvals, so its cost is bounded whatever the store holds; when there
// are more, Truncated is set and the count is a lower bound. It only reads.
func (s *Approvals) CountPending(ctx context.Context, maxScanned int) (PendingCount, error) {
	if maxScanned <= 0 {
		return PendingCount{}, invalid("maxScanned must be positive.")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	prefix := s.keys.owner("")
	match := globEscape(prefix) + "*"
	var (
		mu  sync.Mutex
		ids []string
		out PendingCount
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, match, scanBatch).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			if len(ids) >= maxScanned {
				out.Truncated = true
				mu.Unlock()
				return nil
			}
			if id := strings.TrimPrefix(it.Val(), prefix); validID(id) {
				ids = append(ids, id)
			}
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		it := s.rdb.Scan(ctx, 0, match, scanBatch).Iterator()
		for it.Next(ctx) && len(ids) < maxScanned {
			if id := strings.TrimPrefix(it.Val(), prefix); validID(id) {
				ids = append(ids, id)
			}
		}
		err = it.Err()
	}
	if err != nil {
		return PendingCount{}, unavailable("count pending", err, msgReadDown)
	}
	now := ms(s.cfg.Now())
	for start := 0; start < len(ids); start += scanBatch {
		batch := ids[start:min(start+scanBatch, len(ids))]
		owners := make([]*redis.StringCmd, len(batch))
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, id := range batch {
				owners[i] = pl.Get(ctx, s.keys.owner(id))
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return PendingCount{}, unavailable("count pending", err, msgReadDown)
		}
		var recs []*redis.SliceCmd
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, id := range batch {
				p := owners[i].Val()
				if owners[i].Err() != nil || !validPrincipal(p) {
					continue // gone since the scan
				}
				recs = append(recs, pl.HMGet(ctx, s.keys.approval(p, id), fStatus, fExpires))
			}
			return nil
		}); err != nil {
			return PendingCount{}, unavailable("count pending", err, msgReadDown)
		}
		for _, r := range recs {
			out.Scanned++
			v := r.Val()
			if len(v) != 2 {
				continue
			}
			status, _ := v[0].(string)
			exp, _ := v[1].(string)
			e, err := strconv.ParseInt(exp, 10, 64)
			if Status(status) == StatusPending && err == nil && e > now {
				out.Pending++
			}
		}
	}
	return out, nil
}

// globEscape escapes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
