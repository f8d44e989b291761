package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// Benchmarks of step 2 of the guard (SPEC §7): the per-call session check,
// one EVALSHA against the package's real redis-server on loopback.
// Run with: go test -run '^$' -bench . -benchmem ./sessions

const (
	benchPrincipal = "user:bench@example.com"
	benchAgent     = "spiffe://tollgate.sandbox/agent/bench"
)

// benchSession stores one active session on a fresh database, with the
// wall clock (the check compares expiry with it on every call).
func benchSession(b *testing.B) (*Store, Session) {
	b.Helper()
	rdb := testkit.Redis(b)
	b.Cleanup(func() { _ = rdb.Close() })
	st, err := New(rdb, Config{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := st.Create(context.Background(), Session{
		Principal: benchPrincipal, Actors: []string{benchAgent}, ClientID: benchAgent,
		Scopes: []string{"catalog:read"}, Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	return st, s
}

// BenchmarkSessionCheck is Store.Check of an active session: serial is one
// loopback round trip plus the script; parallel shows how it scales with
// concurrent callers on one client.
func BenchmarkSessionCheck(b *testing.B) {
	st, s := benchSession(b)
	ctx := context.Background()
	check := func() error { return st.Check(ctx, s.Principal, s.ID, "jti-bench") }
	if err := check(); err != nil { // loads the script
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := check(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := check(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
