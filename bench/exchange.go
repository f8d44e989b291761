package bench

import (
	"context"
	"fmt"
	"runtime"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
	"github.com/tollgate-dev/tollgate/sessions"
)

// exchangesAndMemory times token exchanges (POST /oauth/token, each one
// creating a task session and its audit entries), then tops the live
// sessions up to o.Sessions with more exchanges and measures memory.
func (r *runner) exchangesAndMemory(ctx context.Context) error {
	rss0, heap0 := rssBytes(0), heapInUse()
	mem0, err := usedMemory(ctx, r.admin)
	if err != nil {
		return err
	}
	user, actor, err := r.sys.devTokens(ctx, "bench-exchange@example.com", "bench")
	if err != nil {
		return err
	}
	form := exchangeForm(user, actor, "catalog:read", "")
	op := func(ctx context.Context, _, _ int) error {
		_, err := r.sys.exchange(ctx, form)
		return err
	}
	if _, err := drive(ctx, 50, 1, op); err != nil {
		return err
	}
	seq, err := drive(ctx, r.o.ExchangesSequential, 1, op)
	if err != nil {
		return err
	}
	conc, err := drive(ctx, r.o.ExchangesConcurrent, r.o.ExchangeWorkers, op)
	if err != nil {
		return err
	}
	if r.o.ExchangeCPUProfile != "" {
		if err := profileWhile(r.o.ExchangeCPUProfile, func() error {
			_, err := drive(ctx, r.o.ExchangesConcurrent, r.o.ExchangeWorkers, op)
			return err
		}); err != nil {
			return err
		}
	}
	note := "POST /oauth/token (dev user + dev agent → task token); each creates a session and appends its audit entries"
	r.rows = append(r.rows,
		sampleRow("token exchange", "sequential", seq, note),
		sampleRow("token exchange", fmt.Sprintf("%d concurrent", r.o.ExchangeWorkers), conc, ""))

	store, err := sessions.New(r.admin, sessions.Config{})
	if err != nil {
		return err
	}
	live, err := store.Count(ctx)
	if err != nil {
		return err
	}
	if more := r.o.Sessions - int(live); more > 0 {
		if _, err := drive(ctx, more, r.o.ExchangeWorkers, op); err != nil {
			return err
		}
	}
	if live, err = store.Count(ctx); err != nil {
		return err
	}
	runtime.GC()
	rss1, heap1 := rssBytes(0), heapInUse()
	mem1, err := usedMemory(ctx, r.admin)
	if err != nil {
		return err
	}
	created := max(live, 1)
	sess, entry, err := r.recordSizes(ctx)
	if err != nil {
		return err
	}
	r.rows = append(r.rows, row{what: "memory", how: fmt.Sprintf("%s live sessions", thousands(live)),
		note: fmt.Sprintf("bench process RSS %s (%s before the sessions; Go heap in use %s, was %s); "+
			"Redis used_memory %s (was %s: +%s B per session, its audit entries included; "+
			"a session hash is about %s B, an audit entry about %s B); redis-server RSS %s",
			mib(rss1), mib(rss0), mib(int64(heap1)), mib(int64(heap0)),
			mib(mem1), mib(mem0), thousands((mem1-mem0)/created), thousands(sess), thousands(entry),
			mib(rssBytes(r.redis.Pid())))})
	return nil
}

// Families whose records recordSizes weighs (see rediskey.Families).
const (
	sessionFamily = "sessions.session"
	auditFamily   = "sessions.audit"
)

// recordSizes samples MEMORY USAGE of session hashes (up to 100), and of
// the audit stream per entry. It walks the bench's own Redis with SCAN and
// names each key with the key registry, rather than copying the stores'
// layouts here.
func (r *runner) recordSizes(ctx context.Context) (session, entry int64, err error) {
	var (
		total, n int64
		stream   string
		cursor   uint64
	)
	for {
		keys, next, err := r.admin.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return 0, 0, err
		}
		for _, k := range keys {
			f, _ := rediskey.Lookup(k)
			switch {
			case f.Name == sessionFamily && n < 100:
				b, err := r.admin.MemoryUsage(ctx, k).Result()
				if err != nil {
					return 0, 0, err
				}
				total, n = total+b, n+1
			case f.Name == auditFamily && stream == "":
				if t, err := r.admin.Type(ctx, k).Result(); err != nil {
					return 0, 0, err
				} else if t == "stream" {
					stream = k
				}
			}
		}
		if cursor = next; cursor == 0 || n == 100 && stream != "" {
			break
		}
	}
	if n > 0 {
		session = total / n
	}
	if stream == "" {
		return session, 0, nil
	}
	entries, err := r.admin.XLen(ctx, stream).Result()
	if err != nil {
		return 0, 0, err
	}
	b, err := r.admin.MemoryUsage(ctx, stream, 0).Result()
	if err != nil {
		return 0, 0, err
	}
	if entries > 0 {
		entry = b / entries
	}
	return session, entry, nil
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
