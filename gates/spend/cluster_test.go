package spend

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func startCluster(t *testing.T) *redis.ClusterClient { return testkit.StartCluster(t) }

func TestWorksOnRedisCluster(t *testing.T) {
	cc := startCluster(t)
	ctx := context.Background()
	// The cluster has teeth: a script reaching a key of another slot fails.
	err := cc.Eval(ctx, "#!lua\nreturn redis.call('GET', ARGV[1])", []string{"tg:{a}:x"}, "tg:{b}:x").Err()
	if err == nil || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("cross-slot script: %v, want a slot error", err)
	}
	f := newFixtureOn(t, cc, Config{})
	f.ledger.scripts = scriptsWithHeader("#!lua\n")
	exerciseEverything(t, f)
}

// The sandbox runs on miniredis (embedded, gopher-lua): every script and
// command must work there too.
func TestWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseEverything(t, newFixtureOn(t, rdb, Config{}))
}

// exerciseEverything runs every operation of the Ledger, for principals
// whose names try to break the hash tag, and checks the outcomes.
func exerciseEverything(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	chain := []Budget{{"child", usd(3000)}, {"parent", usd(5000)}}
	for _, p := range []string{alice, "user:m}{x", "{user:alice@example.com}", "user:a%7Db"} {
		hold := func(id string, c int64) error {
			_, err := f.ledger.Hold(ctx, HoldRequest{HoldID: id, Principal: p, Provider: Stripe, Amount: usd(c), Budgets: chain})
			return err
		}
		wantCode(t, hold("a", 1000), "")
		wantCode(t, hold("a", 1000), "") // replay
		wantCode(t, hold("b", 1500), "")
		wantCode(t, hold("c", 1000), BudgetExceeded)
		wantCode(t, f.ledger.Commit(ctx, p, "a", usd(800)), "")
		wantCode(t, f.ledger.Commit(ctx, p, "a", usd(800)), "")
		wantCode(t, f.ledger.Release(ctx, p, "b", "declined"), "")
		wantCode(t, hold("d", 2000), "")
		if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "e", Principal: p, Provider: Stripe, Amount: usd(9201)}); fault.CodeOf(err) != CapExceeded {
			t.Fatalf("%q: hold past the cap: %v", p, err)
		}
		s, err := f.ledger.Status(ctx, p, Stripe)
		if err != nil || s.Spent != usd(800) || s.Held != usd(2000) {
			t.Fatalf("%q: status %+v, %v", p, s, err)
		}
		spent, held, left, err := f.ledger.BudgetStatus(ctx, p, "parent", Stripe, usd(5000))
		if err != nil || spent != usd(800) || held != usd(2000) || left != usd(2200) {
			t.Fatalf("%q: parent budget %s %s %s, %v", p, spent, held, left, err)
		}
		got, err := f.ledger.Holds(ctx, HoldFilter{Principal: p})
		if err != nil || len(got) != 1 || got[0].ID != "d" || got[0].Principal != p {
			t.Fatalf("%q: holds %+v, %v", p, got, err)
		}
	}
	// Time passes: everyone's open hold "d" expires.
	f.clock.Advance(DefaultHoldTTL)
	if n, err := f.ledger.ReapExpired(ctx, alice); err != nil || n != 1 {
		t.Fatalf("reap: %d, %v", n, err)
	}
	stale, err := f.ledger.Holds(ctx, HoldFilter{Stale: true})
	if err != nil || len(stale) != 4 {
		t.Fatalf("stale holds %+v, %v; want one per principal", stale, err)
	}
	for _, h := range stale {
		if h.State != StateExpired {
			t.Fatalf("stale hold %+v", h)
		}
		wantCode(t, f.ledger.Reconcile(ctx, h.Principal, h.ID, usd(2000), "charged"), "")
	}
	if s, err := f.ledger.Status(ctx, "user:m}{x", Stripe); err != nil || s.Spent != usd(2800) || s.Held.Minor != 0 {
		t.Fatalf("after reconciliation: %+v, %v", s, err)
	}
	if _, err := f.ledger.Get(ctx, alice, "d"); err != nil {
		t.Fatal(err)
	}
}
