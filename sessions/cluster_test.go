package sessions

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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

	f := newFixtureOn(t, cc)
	f.store.scripts = scriptsWithHeader("#!lua\n")
	exerciseEverything(t, f)
}

// The sandbox runs on miniredis (embedded, gopher-lua): every script and
// command must work there too.
func TestWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseEverything(t, newFixtureOn(t, rdb))
}

// exerciseEverything runs every operation of the Store once, across
// principals, and checks the outcomes.
func exerciseEverything(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	tr := f.tree()
	all := []Session{tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1, tr.other}
	for _, s := range all {
		wantCode(t, f.check(s), "")
	}
	brace := f.create("user:m}{x", member(alice, tr.b1.ID))
	wantCode(t, f.check(brace), "")

	later := f.clock.Now().Add(time.Hour)
	if err := f.store.AddToken(ctx, alice, tr.a1.ID, HashToken("t"), later); err != nil {
		t.Fatal(err)
	}
	if g, err := f.store.Get(ctx, alice, tr.a1.ID); err != nil || !g.Expires.Equal(later) || len(g.TokenHashes) != 1 {
		t.Fatalf("after AddToken: %+v, %v", g, err)
	}
	f.revokeJTI(tr.b, "jti-"+tr.b.ID)
	wantCode(t, f.check(tr.b), TokenRevoked)

	if _, err := f.store.Lookup(ctx, tr.x.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.store.List(ctx, ListFilter{})
	if err != nil || len(list) != len(all)+1 || list[0].ID != tr.a1.ID {
		t.Fatalf("list: %d sessions, %v", len(list), err)
	}
	node, err := f.store.Tree(ctx, alice, tr.root.ID)
	if err != nil || len(node.Children) != 2 {
		t.Fatalf("tree: %+v, %v", node, err)
	}

	got, err := f.store.Revoke(ctx, alice, tr.root.ID, "everything")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := ids(tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1, brace); !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	for _, s := range append(all[:8], brace) {
		wantCode(t, f.check(s), fault.SessionRevoked)
	}
	wantCode(t, f.check(tr.other), "")
	_, err = f.store.Create(ctx, Session{Principal: bob, Parent: tr.a.ID, ParentPrincipal: alice,
		Expires: f.clock.Now().Add(time.Minute)})
	wantCode(t, err, fault.SessionRevoked)
	f.clock.Advance(time.Hour)
	wantCode(t, f.check(tr.other), fault.SessionExpired)
}
