package loopguard

import (
	"context"
	"strings"
	"testing"
	"time"

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
	f := newFixtureOn(t, cc, Config{})
	f.guard.scripts = scriptsWithHeader("#!lua\n")
	exerciseEverything(t, f)
}

// The sandbox runs on miniredis (embedded, gopher-lua): every script must
// work there too.
func TestWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseEverything(t, newFixtureOn(t, rdb, Config{}))
}

// exerciseEverything runs every operation of the Guard across crafted
// principals and checks the outcomes.
func exerciseEverything(t *testing.T, f *fixture) {
	t.Helper()
	for _, p := range craftedPrincipals {
		c := call("s1")
		c.Principal = p
		f.allowN(c, DefaultPerSession)
		wantCode(t, f.allow(c), RateLimited)
		c.Session = "s2"
		f.allowN(c, DefaultPerPrincipal-DefaultPerSession)
		wantCode(t, f.allow(c), RateLimited)
		c.Digest = digestB
		for range DefaultRepeatLimit {
			f.refused(c, "cap_exceeded")
		}
		wantCode(t, f.allow(c), LoopDetected)
	}
	f.clock.Advance(time.Minute)
	for _, p := range craftedPrincipals {
		c := call("s1")
		c.Principal = p
		c.Digest = digestB
		wantCode(t, f.allow(c), "")
	}
}
