package human

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// scanPage is how many keys one SCAN step asks Redis to look at.
const scanPage = 500

// IDs returns the ids of approvals on record across every principal, read
// from the owner index (<prefix>:approval:<id>) with SCAN on every master
// of a Cluster: at most max of them, in no particular order, and whether
// there were more. It is for operators, who may not know whose approvals
// to look at; a principal's own are List. Each SCAN step is bounded by
// ApprovalsConfig.Timeout. Refusals: fault.InvalidArgument (max < 1),
// fault.Unavailable.
func (s *Approvals) IDs(ctx context.Context, max int) (ids []string, truncated bool, err error) {
	if max < 1 {
		return nil, false, invalid("ask for at least one approval id.")
	}
	prefix := s.keys.owner("")
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			step, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			keys, next, err := c.Scan(step, cursor, prefix+"*", scanPage).Result()
			cancel()
			if err != nil {
				return err
			}
			mu.Lock()
			for _, k := range keys {
				if len(ids) >= max {
					truncated = true
					mu.Unlock()
					return nil
				}
				ids = append(ids, strings.TrimPrefix(k, prefix))
			}
			mu.Unlock()
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return nil, false, unavailable("ids", err, msgReadDown)
	}
	return ids, truncated, nil
}
