package idempotency

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func startCluster(t *testing.T) *redis.ClusterClient { return testkit.StartCluster(t) }

func TestWorksOnRedisCluster(t *testing.T) {
	cc := startCluster(t)
	// The cluster has teeth: a script reaching a key of another slot fails.
	err := cc.Eval(context.Background(), "#!lua\nreturn redis.call('GET', ARGV[1])", []string{"tg:{a}:x"}, "tg:{b}:x").Err()
	if err == nil || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("cross-slot script: %v, want a slot error", err)
	}
	f := newFixtureOn(t, cc)
	f.store.scripts = scriptsWithHeader("#!lua\n")
	exerciseEverything(t, f)
}

// The sandbox runs on miniredis (embedded, gopher-lua): every script must
// work there too.
func TestWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseEverything(t, newFixtureOn(t, rdb))
}

// exerciseEverything runs every operation of the Store across crafted
// principals and checks the outcomes.
func exerciseEverything(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	dA, dB := digest(t, argsA), digest(t, argsB)
	for _, p := range craftedPrincipals {
		out := f.started(p, "k", dA)
		_, err := f.begin(p, "k", dA)
		wantCode(t, err, InProgress)
		_, err = f.begin(p, "k", dB)
		wantCode(t, err, Conflict)
		if err := f.complete(p, "k", out.Fence, []byte("result of "+p)); err != nil {
			t.Fatal(err)
		}
		rep, err := f.begin(p, "k", dA)
		if err != nil || rep.State != Replay || string(rep.Result) != "result of "+p {
			t.Fatalf("%q: replay %+v, %v", p, rep, err)
		}
		ab := f.started(p, "other", dB)
		if err := f.store.Abort(ctx, p, tool, "other", ab.Fence); err != nil {
			t.Fatal(err)
		}
		f.started(p, "other", dA)
	}
	old := f.started(alice, "lock", dA)
	f.clock.Advance(DefaultInProgressTTL)
	f.started(alice, "lock", dA)
	wantCode(t, f.complete(alice, "lock", old.Fence, nil), FenceLost)
}
