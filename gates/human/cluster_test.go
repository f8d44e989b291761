package human

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

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
	var made []string
	for _, p := range craftedPrincipals {
		f := newFixtureOn(t, cc)
		f.approvals.scripts = scriptsWithHeader("#!lua\n")
		b := call
		b.Principal = p
		tok := f.seal(b)
		_, err := f.sealer.Open(ctx, tok, b)
		wantCode(t, err, "")
		_, err = f.sealer.Open(ctx, tok, b)
		wantCode(t, err, StateReplayed)

		a := f.create(purchase(b))
		made = append(made, a.ID)
		_, err = f.approvals.Decide(ctx, a.ID, bob, true, "page")
		wantCode(t, err, ApprovalForbidden)
		f.decide(a.ID, p, true)
		_, err = f.approvals.Consume(ctx, a.ID, b)
		wantCode(t, err, "")
		if got, err := f.approvals.Get(ctx, a.ID); err != nil || got.Status != StatusUsed {
			t.Fatalf("%q: get %+v, %v", p, got, err)
		}
		if l, err := f.approvals.List(ctx, p, false); err != nil || len(l) == 0 {
			t.Fatalf("%q: list %v, %v", p, l, err)
		}
		if err := f.consents.Remember(ctx, p, "stripe", Billing, ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := f.consents.Has(ctx, p, "stripe", Billing, ""); !ok || err != nil {
			t.Fatalf("%q: has %v, %v", p, ok, err)
		}
	}
	// The operator's listing reaches every master, wherever each
	// principal's owner index key hashed.
	f := newFixtureOn(t, cc)
	ids, truncated, err := f.approvals.IDs(ctx, 1000)
	if err != nil || truncated {
		t.Fatalf("ids: %v, truncated %v", err, truncated)
	}
	slices.Sort(ids)
	slices.Sort(made)
	if !slices.Equal(ids, made) {
		t.Fatalf("ids %v, want %v", ids, made)
	}
}
