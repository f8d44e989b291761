package phase

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// shorts records what a Runner's Wait.Short was told, and counts it in an
// Observer as compose does.
type shorts struct {
	mu  sync.Mutex
	got []string
	obs *observe.Observer
}

func (s *shorts) short(phase string, acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, phase)
	s.obs.RedisWaitShort(phase)
}

func waitRig(t *testing.T, r *testkit.Replicated, timeout time.Duration) (*rig, *shorts) {
	g := newRig(t, r.Master)
	s := &shorts{obs: observe.New(observe.Config{})}
	g.r.Wait = Wait{Replicas: 1, Timeout: timeout, Short: s.short}
	return g, s
}

func replicaLedger(t *testing.T, r *testkit.Replicated) *spend.Ledger {
	l, err := spend.New(r.Replica, spend.Config{DefaultCap: usd(10000)})
	must(t, err)
	return l
}

// (a) With the replica in sync, a waited hold and commit succeed, each is
// on the replica as soon as its phase returns, and a paid call is still
// three round trips (each script and its WAIT are one pipeline).
func TestWaitedPhasesAcknowledged(t *testing.T) {
	ctx := context.Background()
	r := testkit.StartReplicated(t)
	g, s := waitRig(t, r, time.Second)
	onReplica := replicaLedger(t, r)
	k := Key{Tool: "domain_register", Key: "w1", Digest: digest}
	for i, key := range []string{"w1", "w2"} {
		k.Key = key
		before := g.hook.N.Load()
		ad, err := paidCall(t, ctx, g, key, 700)
		must(t, err)
		st, err := onReplica.Status(ctx, alice, "cloudflare")
		must(t, err)
		if st.Held.Minor != 700 {
			t.Fatalf("call %d: the replica holds %v right after Admit, want 7.00", i, st.Held)
		}
		_, err = g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
			Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(700)}, Complete: &Complete{Key: k, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
		must(t, err)
		st, err = onReplica.Status(ctx, alice, "cloudflare")
		must(t, err)
		if st.Held.Minor != 0 || st.Spent.Minor != int64(700*(i+1)) {
			t.Fatalf("call %d: the replica shows spent %v held %v right after Settle", i, st.Spent, st.Held)
		}
		if n := g.hook.N.Load() - before; i == 1 && n != 3 {
			t.Errorf("a waited paid call took %d round trips, want 3", n)
		}
	}
	if len(s.got) != 0 {
		t.Fatalf("short phases %v with the replica in sync", s.got)
	}
}

// (b) With the replica paused, a waited hold is not confirmed: Admit
// refuses with unavailable after about the timeout, the hold is released
// on the master (nothing held), and the idempotency lock is left for the
// caller to abort.
func TestWaitedHoldShortRefuses(t *testing.T) {
	ctx := context.Background()
	r := testkit.StartReplicated(t)
	g, s := waitRig(t, r, 150*time.Millisecond)
	// Load the scripts first, so that the timing below is one WAIT.
	_, err := paidCall(t, ctx, g, "warm", 1)
	must(t, err)
	must(t, r.Pause())
	start := time.Now()
	ad, err := paidCall(t, ctx, g, "short", 900)
	took := time.Since(start)
	testkit.WantCode(t, err, fault.Unavailable)
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("the refused call took %s, want about the 150ms timeout", took)
	}
	if ad.Hold.ID != "" || ad.Idem.Fence == "" {
		t.Fatalf("admit = %+v; want no hold and the lock's fence for the caller to abort", ad)
	}
	st, err := g.r.Ledger.Status(ctx, alice, "cloudflare")
	must(t, err)
	if st.Held.Minor != 1 {
		// Only the warm-up call's 0.01 is held: the refused hold is released.
		t.Fatalf("the master holds %v after the refused hold, want only the first call's 0.01", st.Held)
	}
	if len(s.got) != 1 || s.got[0] != "admit" {
		t.Fatalf("short phases %v, want [admit]", s.got)
	}
}

// (c) A commit fewer replicas acknowledged is kept: Settle succeeds (the
// provider has charged), and the short commit is counted.
func TestWaitedCommitShortIsKept(t *testing.T) {
	ctx := context.Background()
	r := testkit.StartReplicated(t)
	g, s := waitRig(t, r, 100*time.Millisecond)
	ad, err := paidCall(t, ctx, g, "c1", 500)
	must(t, err)
	must(t, r.Pause())
	start := time.Now()
	_, err = g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"), Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(500)},
		Complete: &Complete{Key: Key{Tool: "domain_register", Key: "c1", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("settle took %s", took)
	}
	st, err := g.r.Ledger.Status(ctx, alice, "cloudflare")
	must(t, err)
	if st.Spent.Minor != 500 || st.Held.Minor != 0 {
		t.Fatalf("the master shows spent %v held %v, want the commit kept", st.Spent, st.Held)
	}
	if len(s.got) != 1 || s.got[0] != "settle" {
		t.Fatalf("short phases %v, want [settle]", s.got)
	}
	want := `
# HELP tollgate_redis_wait_short_total Writes fewer Redis replicas acknowledged than --redis-wait-replicas within --redis-wait-timeout, by phase: admit (the hold was released and the call refused), settle (the commit was kept: the provider had charged), renewal (Stripe was answered 503 and retries).
# TYPE tollgate_redis_wait_short_total counter
tollgate_redis_wait_short_total{phase="settle"} 1
`
	if err := testutil.GatherAndCompare(s.obs.Registry(), strings.NewReader(want), "tollgate_redis_wait_short_total"); err != nil {
		t.Fatal(err)
	}
}

// (d) With waiting off (Replicas 0 but a timeout set, as the flags'
// defaults are) a paid call is the same three round trips: exercise
// counts them.
func TestWaitOffAddsNothing(t *testing.T) {
	g := newRig(t, testkit.Redis(t))
	g.r.Wait = Wait{Replicas: 0, Timeout: 500 * time.Millisecond, Short: func(string, int) { t.Error("short with waiting off") }}
	exercise(t, context.Background(), g)
}
