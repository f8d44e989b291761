package phase

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/rediskey"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

const alice = "user:alice@example.com"

type rig struct {
	r    *Runner
	rdb  redis.UniversalClient
	sess sessions.Session
	hook *testkit.CountHook
}

func newRig(t *testing.T, rdb redis.UniversalClient) *rig {
	t.Helper()
	ctx := context.Background()
	hook := &testkit.CountHook{}
	rdb.AddHook(hook)
	st, err := sessions.New(rdb, sessions.Config{})
	must(t, err)
	audit, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
	must(t, err)
	loop, err := loopguard.New(rdb, loopguard.Config{})
	must(t, err)
	idem, err := idempotency.New(rdb, idempotency.Config{Secret: []byte("0123456789abcdef0123456789abcdef")})
	must(t, err)
	ledger, err := spend.New(rdb, spend.Config{DefaultCap: money.Money{Minor: 10000, Currency: "usd"}})
	must(t, err)
	s, err := st.Create(ctx, sessions.Session{Principal: alice, Actors: []string{"agent"}, ClientID: "agent",
		Scopes: []string{"domain:register"}, Expires: time.Now().Add(10 * time.Minute)})
	must(t, err)
	return &rig{r: &Runner{Redis: rdb, Audit: audit, Sessions: st, Loop: loop, Idem: idem, Ledger: ledger}, rdb: rdb, sess: s, hook: hook}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (g *rig) call() Call { return Call{Principal: alice, Session: g.sess.ID, JTI: "jti-1"} }

func (g *rig) entry(event string) sessions.Entry {
	return sessions.Entry{Event: event, Principal: alice, Session: g.sess.ID, Tool: "domain_register", Decision: sessions.DecisionOK}
}

const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func usd(m int64) money.Money { return money.Money{Minor: m, Currency: "usd"} }

// A paid call is three round trips: one per phase, each audited with
// the step it records, in the principal's own chain.
func paidCall(t *testing.T, ctx context.Context, g *rig, key string, amount int64) (AdmitResult, error) {
	t.Helper()
	k := &Key{Tool: "domain_register", Key: key, Digest: digest}
	pre, err := g.r.Pre(ctx, Pre{Call: g.call(), Entry: g.entry("tool_call"),
		Loop: &loopguard.Call{Principal: alice, Session: g.sess.ID, Tool: "domain_register", Digest: digest}, Peek: k})
	if err != nil || pre.Replay != nil {
		t.Fatalf("pre = %+v, %v", pre, err)
	}
	return g.r.Admit(ctx, Admit{Call: g.call(), Entry: g.entry("hold"), Begin: k,
		Hold: &spend.HoldRequest{Principal: alice, Provider: "cloudflare", Amount: usd(amount),
			Budgets: []spend.Budget{{Session: g.sess.ID, Max: usd(5000)}}}})
}

func exercise(t *testing.T, ctx context.Context, g *rig) {
	k := &Key{Tool: "domain_register", Key: "k1", Digest: digest}
	before := g.hook.N.Load()
	ad, err := paidCall(t, ctx, g, "k1", 1117)
	if err != nil || ad.Hold.State != spend.StateHeld || ad.Hold.ID != ad.Idem.Fence || ad.Entry.Hash == "" {
		t.Fatalf("admit = %+v, %v", ad, err)
	}
	res, err := g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(1117)}, Complete: &Complete{Key: *k, Fence: ad.Idem.Fence, Result: []byte(`{"ok":true}`)}})
	if err != nil || res.IdemError != nil || res.Entry.Hash == "" {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	// The first call also indexes the audit chain and the ledger's
	// principal (once per process), and loads each script (EVALSHA, then
	// EVAL); the next call of the same shape is one round trip per phase.
	if n := g.hook.N.Load() - before; n > 8 {
		t.Errorf("the first paid call took %d commands", n)
	}
	before = g.hook.N.Load()
	ad, err = paidCall(t, ctx, g, "k4", 1)
	must(t, err)
	_, err = g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(1)}, Complete: &Complete{Key: Key{Tool: "domain_register", Key: "k4", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	if n := g.hook.N.Load() - before; n != 3 {
		t.Errorf("a paid call took %d round trips, want 3", n)
	}
	// With its charge noted for reconcile: still one round trip per phase
	// (a first call of that shape loads the fused script, uncounted).
	ad, err = paidCall(t, ctx, g, "k5", 1)
	must(t, err)
	_, err = g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(1), Note: &Note{Key: "acct/k5.com"}}, Complete: &Complete{Key: Key{Tool: "domain_register", Key: "k5", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	note := &Note{Key: "acct/k6.com", Ref: "ray-k6"}
	before = g.hook.N.Load()
	ad, err = paidCall(t, ctx, g, "k6", 1)
	must(t, err)
	sr, err := g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(1), Note: note}, Complete: &Complete{Key: Key{Tool: "domain_register", Key: "k6", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	if n := g.hook.N.Load() - before; n != 3 {
		t.Errorf("a paid call with a note took %d round trips, want 3", n)
	}
	if sr.NoteErr != nil {
		t.Fatalf("note: %v", sr.NoteErr)
	}
	cs, err := g.r.Ledger.Charges(ctx, alice, "cloudflare", ad.Hold.Month)
	if err != nil || !slices.ContainsFunc(cs, func(c spend.Charge) bool { return c.Key == note.Key && c.Ref == note.Ref && c.Amount == usd(1) }) {
		t.Fatalf("the committed charge is not noted: %+v %v", cs, err)
	}
	// A write that belongs with the charge (a registration's zone) rides
	// in the commit's script.
	mark := "tg:{" + rediskey.EscapePrincipal(alice) + "}:test-with"
	with := func(v string) []fuse.Step {
		return []fuse.Step{{Name: "test_with", Body: "redis.call('SET', KEYS[1], ARGV[1]) return 1", Continue: "true", Keys: []string{mark}, Args: []any{v}}}
	}
	ad, err = paidCall(t, ctx, g, "k7", 1)
	must(t, err)
	wr, err := g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit:   &Commit{HoldID: ad.Hold.ID, Actual: usd(1), With: with("k7")},
		Complete: &Complete{Key: Key{Tool: "domain_register", Key: "k7", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	if v, err := g.rdb.Get(ctx, mark).Result(); err != nil || v != "k7" || len(wr.With) != 1 || wr.With[0] != int64(1) {
		t.Fatalf("the commit's With step: %q, %v, replies %v", v, err, wr.With)
	}
	ad, err = paidCall(t, ctx, g, "k2", 100)
	must(t, err)
	_, err = g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("release"), Release: &Release{HoldID: ad.Hold.ID, Reason: "declined"},
		Complete: &Complete{Key: Key{Tool: "domain_register", Key: "k2", Digest: digest}, Fence: ad.Idem.Fence, Result: []byte(`{}`)}})
	must(t, err)
	// A commit that cannot be recorded (the hold was released) runs none
	// of its With steps and appends nothing.
	if _, err := g.r.Settle(ctx, Settle{Call: g.call(), Entry: g.entry("commit"),
		Commit: &Commit{HoldID: ad.Hold.ID, Actual: usd(100), With: with("k2")}}); err == nil {
		t.Fatal("a released hold was committed")
	}
	if v, _ := g.rdb.Get(ctx, mark).Result(); v != "k7" {
		t.Fatalf("a With step ran although its commit was refused: %q", v)
	}

	// The same key again is a replay, found in the first phase.
	pre, err := g.r.Pre(ctx, Pre{Call: g.call(), Entry: g.entry("tool_call"), Peek: k})
	if err != nil || string(pre.Replay) != `{"ok":true}` || pre.Entry.Hash != "" {
		t.Fatalf("replay pre = %+v, %v", pre, err)
	}

	// Over the cap: refused in the second phase; the lock is taken (the
	// caller aborts it), nothing held, no hold entry.
	_, err = paidCall(t, ctx, g, "k3", 9000)
	testkit.WantCode(t, err, spend.CapExceeded)

	// A revoked session stops the first phase, before any count.
	_, err = g.r.Sessions.Revoke(ctx, alice, g.sess.ID, "test")
	must(t, err)
	_, err = g.r.Pre(ctx, Pre{Call: g.call(), Entry: g.entry("tool_call")})
	testkit.WantCode(t, err, fault.SessionRevoked)

	// What was audited: tool_call, hold, commit for each of the five
	// committed calls, tool_call, hold, release, and the last call's
	// tool_call; the chain verifies.
	var events []string
	all, err := g.r.Audit.ForSessions(ctx, map[string]string{g.sess.ID: alice})
	must(t, err)
	for _, e := range all[g.sess.ID] {
		events = append(events, e.Event)
	}
	want := []string{"tool_call", "hold", "commit", "tool_call", "hold", "commit", "tool_call", "hold", "commit", "tool_call", "hold", "commit", "tool_call", "hold", "commit", "tool_call", "hold", "release", "tool_call"}
	if len(events) != len(want) {
		t.Fatalf("audited %v, want %v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("audited %v, want %v", events, want)
		}
	}
	v, err := g.r.Audit.Verify(ctx, nil)
	if err != nil || !v.OK {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	st, err := g.r.Ledger.Status(ctx, alice, "cloudflare")
	must(t, err)
	if st.Spent.Minor != 1121 || st.Held.Minor != 0 {
		t.Fatalf("ledger spent %v held %v, want 11.21 and nothing", st.Spent, st.Held)
	}
}

func TestPhasesOnRedis(t *testing.T) {
	exercise(t, context.Background(), newRig(t, testkit.Redis(t)))
}

// Every key a phase touches shares the principal's slot: Redis Cluster
// refuses any other (the shebang makes it check undeclared keys too).
func TestPhasesOnRedisCluster(t *testing.T) {
	cc := testkit.StartCluster(t)
	exercise(t, fuse.Strict(context.Background()), newRig(t, cc))
}

// A process that dies between the second and the third phase leaves an
// open hold that expires into the stale list, and a hold entry without an
// outcome: both are there for reconciliation.
func TestCrashBetweenAdmitAndSettle(t *testing.T) {
	ctx := context.Background()
	rdb := testkit.Redis(t)
	g := newRig(t, rdb)
	clk := time.Now()
	ledger, err := spend.New(rdb, spend.Config{DefaultCap: usd(10000), HoldTTL: time.Minute, Now: func() time.Time { return clk }})
	must(t, err)
	g.r.Ledger = ledger
	ad, err := paidCall(t, ctx, g, "crash", 500)
	must(t, err)
	// The process is gone: no Settle. A minute later the hold is stale.
	clk = clk.Add(2 * time.Minute)
	holds, err := ledger.Holds(ctx, spend.HoldFilter{Principal: alice, Stale: true})
	must(t, err)
	stale := false
	for _, h := range holds {
		if h.ID == ad.Hold.ID {
			stale = true
		}
	}
	if !stale {
		t.Fatalf("hold %s not listed as stale: %+v", ad.Hold.ID, holds)
	}
	all, err := g.r.Audit.ForSessions(ctx, map[string]string{g.sess.ID: alice})
	must(t, err)
	es := all[g.sess.ID]
	if len(es) != 2 || es[1].Event != "hold" || es[1].Detail["hold"] != ad.Hold.ID {
		t.Fatalf("audit shows %+v, want the call and its hold with no outcome", es)
	}
}
