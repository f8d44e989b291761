package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is what a fixed number of calls cost.
type sample struct {
	calls int
	wall  time.Duration
	lat   []time.Duration // one per call, unsorted until summarised
}

// drive makes n calls of op spread over workers goroutines (each pulls the
// next call number until n are taken), timing every call. The first error
// stops the run: a benchmark of refusals would measure the wrong thing.
func drive(ctx context.Context, n, workers int, op func(ctx context.Context, worker, i int) error) (sample, error) {
	var next atomic.Int64
	lats := make([][]time.Duration, workers)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		lats[w] = make([]time.Duration, 0, n/workers+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := op(ctx, w, i); err != nil {
					cancel(fmt.Errorf("call %d (worker %d): %w", i, w, err))
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	s := sample{calls: n, wall: time.Since(start)}
	if err := context.Cause(ctx); err != nil {
		return s, err
	}
	for _, l := range lats {
		s.lat = append(s.lat, l...)
	}
	return s, nil
}

// merge adds another run of the same configuration.
func (s *sample) merge(o sample) {
	s.calls += o.calls
	s.wall += o.wall
	s.lat = append(s.lat, o.lat...)
}

// rate is calls per second of wall time.
func (s sample) rate() float64 {
	if s.wall <= 0 {
		return 0
	}
	return float64(s.calls) / s.wall.Seconds()
}

// pct returns the p-th percentile latency (nearest rank), 0 < p ≤ 100.
func (s sample) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	k := int(float64(len(l))*p/100+0.999999) - 1
	return l[min(max(k, 0), len(l)-1)]
}
