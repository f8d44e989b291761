package bench

import (
	"context"
	"fmt"
	"runtime"
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
	note := "POST /oauth/token (dev user + dev agent → task token); each creates a session and appends its audit entries"
	r.rows = append(r.rows,
		sampleRow("token exchange", "sequential", seq, note),
		sampleRow("token exchange", fmt.Sprintf("%d concurrent", r.o.ExchangeWorkers), conc, ""))

	live, err := r.admin.ZCard(ctx, "tg:sessidx").Result()
	if err != nil {
		return err
	}
	if more := r.o.Sessions - int(live); more > 0 {
		if _, err := drive(ctx, more, r.o.ExchangeWorkers, op); err != nil {
			return err
		}
	}
	if live, err = r.admin.ZCard(ctx, "tg:sessidx").Result(); err != nil {
		return err
	}
	runtime.GC()
	rss1, heap1 := rssBytes(0), heapInUse()
	mem1, err := usedMemory(ctx, r.admin)
	if err != nil {
		return err
	}
	created := max(live, 1)
	r.rows = append(r.rows, row{what: "memory", how: fmt.Sprintf("%s live sessions", thousands(live)),
		note: fmt.Sprintf("bench process RSS %s (%s before the sessions; Go heap in use %s, was %s); "+
			"Redis used_memory %s (was %s: +%s B per session, its audit entries included); redis-server RSS %s",
			mib(rss1), mib(rss0), mib(int64(heap1)), mib(int64(heap0)),
			mib(mem1), mib(mem0), thousands((mem1-mem0)/created), mib(rssBytes(r.redis.Pid())))})
	return nil
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
