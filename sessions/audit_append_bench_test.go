package sessions

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// Benchmarks of the audit append every tool call makes (SPEC §7 step 10,
// §10): hashing the entry and one compare-and-set EVALSHA on the chain.
// Run with: go test -run '^$' -bench . -benchmem ./sessions

// benchEntry is what the Audit middleware writes for an allowed tool call.
func benchEntry() Entry {
	return Entry{Event: "tool_call", Tool: "catalog_get",
		ArgsDigest: DigestArgs([]byte(`{"id":"cloudflare/registrar:domain.com"}`)),
		Decision:   DecisionAllow, Principal: benchPrincipal, Actors: []string{benchAgent},
		ClientID: benchAgent, Session: "sess-bench", JTI: "jti-bench"}
}

// BenchmarkAuditAppend is Audit.Append. Appends within a process take
// turns (the chain is linear), so parallel measures that turn-taking: its
// ns/op is the ceiling on audited calls per second per process.
func BenchmarkAuditAppend(b *testing.B) {
	rdb := testkit.Redis(b)
	b.Cleanup(func() { _ = rdb.Close() })
	a, err := NewAudit(rdb, AuditConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e := benchEntry()
	if _, err := a.Append(ctx, e); err != nil { // loads the script
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Append(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
