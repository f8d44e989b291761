package spend

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// Benchmarks of the paid path's ledger (SPEC §9.1): Hold then Commit, each
// one round trip to the package's real redis-server on loopback.
// Run with: go test -run '^$' -bench . -benchmem ./gates/spend

// BenchmarkHoldCommit is one Hold and its Commit of one cent, with a cap no
// run reaches. serial is the pair's latency; parallel-one-cap has 64
// goroutines contending for one principal's cap (one set of keys, one
// slot); parallel-distinct-caps gives each goroutine its own principal.
func BenchmarkHoldCommit(b *testing.B) {
	rdb := testkit.Redis(b)
	b.Cleanup(func() { _ = rdb.Close() })
	l, err := New(rdb, Config{DefaultCap: usd(MaxMinor / 2)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pair := func(principal string) error {
		h, err := l.Hold(ctx, HoldRequest{Principal: principal, Provider: "cloudflare", Amount: usd(1), Tool: "bench"})
		if err != nil {
			return err
		}
		return l.Commit(ctx, principal, h.ID, usd(1))
	}
	if err := pair("user:bench-warm@example.com"); err != nil { // loads the scripts
		b.Fatal(err)
	}
	goroutines := max(1, 64/runtime.GOMAXPROCS(0))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pair("user:bench-serial@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel-one-cap", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(goroutines)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pair("user:bench-shared@example.com"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	var next atomic.Int64
	b.Run("parallel-distinct-caps", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(goroutines)
		b.RunParallel(func(pb *testing.PB) {
			p := fmt.Sprintf("user:bench-%d@example.com", next.Add(1))
			for pb.Next() {
				if err := pair(p); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
