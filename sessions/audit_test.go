package sessions

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// What the guard, the exchange and the spend gates need from an Audit; the
// interface itself belongs to its users.
var _ interface {
	Append(ctx context.Context, e Entry) (Entry, error)
} = (*Audit)(nil)

// newAudit returns an Audit on rdb with clk's clock (time.Now when nil).
func newAudit(t *testing.T, rdb redis.UniversalClient, clk *clock, cfg AuditConfig) *Audit {
	t.Helper()
	if clk != nil {
		cfg.Now = clk.Now
	}
	a, err := NewAudit(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// appendN appends n tool calls of session sid, one millisecond apart.
func appendN(t *testing.T, a *Audit, clk *clock, sid string, n int) []Entry {
	t.Helper()
	return appendNCtx(context.Background(), t, a, clk, sid, n)
}

func appendNCtx(ctx context.Context, t *testing.T, a *Audit, clk *clock, sid string, n int) []Entry {
	t.Helper()
	out := make([]Entry, 0, n)
	for i := range n {
		clk.Advance(time.Millisecond)
		e, err := a.Append(ctx, Entry{
			Event: "tool_call", Principal: alice, Actors: []string{agent}, Session: sid,
			Tool: "dns_record_set", Decision: DecisionOK, Detail: map[string]string{"i": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func verifyOK(t *testing.T, a *Audit, want int) VerifyResult {
	t.Helper()
	res, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Entries != want {
		t.Fatalf("verify = %+v, want OK with %d entries", res, want)
	}
	return res
}

func TestAuditAppendChains(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	a := newAudit(t, rdb, clk, AuditConfig{})
	got := appendN(t, a, clk, "s1", 3)

	prev := GenesisHash
	for i, e := range got {
		if e.Seq != int64(i+1) || e.Prev != prev || e.ID == "" || len(e.Nonce) != 32 {
			t.Fatalf("entry %d = seq %d prev %s id %q nonce %q; want seq %d prev %s", i, e.Seq, e.Prev, e.ID, e.Nonce, i+1, prev)
		}
		body, err := canonical(e)
		if err != nil {
			t.Fatal(err)
		}
		if h := chainHash(e.Prev, body); h != e.Hash {
			t.Fatalf("entry %d hash %s, recomputed %s", i, e.Hash, h)
		}
		if !e.Time.Equal(newClock().Now().Add(time.Duration(i+1) * time.Millisecond)) {
			t.Fatalf("entry %d time %v is not the clock's", i, e.Time)
		}
		prev = e.Hash
	}
	res := verifyOK(t, a, 3)
	if want := headsDigest([]string{alice + "\x00" + got[2].Hash + "\n"}); res.Head != want {
		t.Fatalf("verify head %s, want %s (the digest of alice's chain head %s)", res.Head, want, got[2].Hash)
	}
	if res.Chains != 2 {
		t.Fatalf("verify checked %d chains, want the system chain and alice's", res.Chains)
	}

	// The stream holds exactly the canonical form and the hash.
	msgs, err := rdb.XRange(context.Background(), "tg:{"+alice+"}:audit", "-", "+").Result()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("xrange: %v, %d entries", err, len(msgs))
	}
	body, _ := canonical(got[0])
	if msgs[0].ID != got[0].ID || msgs[0].Values[sfEntry] != string(body) || msgs[0].Values[sfHash] != got[0].Hash {
		t.Fatalf("stored %v, want entry %s", msgs[0].Values, body)
	}
	head, err := rdb.HGetAll(context.Background(), "tg:{"+alice+"}:audit:head").Result()
	if err != nil || head["hash"] != got[2].Hash || head["seq"] != "3" || head["id"] != got[2].ID {
		t.Fatalf("head = %v (%v), want the third entry", head, err)
	}

	// A second Audit (another replica) with a stale view continues the chain.
	b := newAudit(t, rdb, clk, AuditConfig{})
	e, err := b.Append(context.Background(), Entry{Event: "revoke", Principal: alice, Session: "s1"})
	if err != nil || e.Seq != 4 || e.Prev != got[2].Hash {
		t.Fatalf("append from a second replica = seq %d prev %s (%v)", e.Seq, e.Prev, err)
	}
	verifyOK(t, a, 4)
}

func TestAuditEmptyChainVerifies(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	res := verifyOK(t, newAudit(t, rdb, nil, AuditConfig{}), 0)
	if res.Head != "" {
		t.Fatalf("empty chain head %q", res.Head)
	}
}

// Two replicas, 20 goroutines each appending 20 entries: one linear chain.
func TestAuditConcurrentReplicasKeepOneChain(t *testing.T) {
	opt := testkit.RedisOptions(t)
	var audits [2]*Audit
	for i := range audits {
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		audits[i] = newAudit(t, rdb, nil, AuditConfig{Timeout: 20 * time.Second})
	}
	const goroutines, each = 20, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			a := audits[g%2]
			for i := range each {
				_, err := a.Append(context.Background(), Entry{
					Event: "tool_call", Principal: alice, Session: fmt.Sprintf("s%d", g),
					Decision: DecisionAllow, Detail: map[string]string{"i": fmt.Sprint(i)},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var calls []int
	res, err := audits[0].Verify(context.Background(), func(n int) { calls = append(calls, n) })
	if err != nil || !res.OK || res.Entries != goroutines*each {
		t.Fatalf("verify = %+v, %v; want OK with %d entries", res, err, goroutines*each)
	}
	if len(calls) == 0 || calls[len(calls)-1] != goroutines*each {
		t.Fatalf("progress calls %v, want ending at %d", calls, goroutines*each)
	}
	// Every session's entries are all there, in order.
	all, err := audits[1].ForSessions(context.Background(), map[string]string{"s0": alice, "s19": alice})
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"s0", "s19"} {
		if len(all[sid]) != each {
			t.Fatalf("%s has %d entries, want %d", sid, len(all[sid]), each)
		}
		for i, e := range all[sid] {
			if e.Detail["i"] != fmt.Sprint(i) {
				t.Fatalf("%s entry %d is %v: out of order", sid, i, e.Detail)
			}
		}
	}
}

// Verify reads to the end, then the head: appends during a Verify never
// make it report a broken chain.
func TestAuditVerifyDuringAppends(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, nil, AuditConfig{})
	b := newAudit(t, rdb, nil, AuditConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			if _, err := b.Append(ctx, Entry{Event: "tool_call", Session: "busy"}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
	for range 10 {
		res, err := a.Verify(context.Background(), nil)
		if err != nil || !res.OK {
			t.Fatalf("verify during appends = %+v, %v", res, err)
		}
	}
	cancel()
	wg.Wait()
}

// hookReplayEval resends every successful script call once, as go-redis
// does after a network error that lost a reply: the first run's reply is
// dropped and the caller sees the second's.
type hookReplayEval struct{ replays atomic.Int32 }

func (h *hookReplayEval) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hookReplayEval) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *hookReplayEval) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if n := cmd.Name(); err == nil && (n == "evalsha" || n == "eval") {
			h.replays.Add(1)
			return next(ctx, cmd)
		}
		return err
	}
}

func TestAuditRetryAfterLostReplyAddsNothing(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &hookReplayEval{}
	rdb.AddHook(hook)
	clk := newClock()
	a := newAudit(t, rdb, clk, AuditConfig{})
	got := appendN(t, a, clk, "s1", 3)
	if hook.replays.Load() < 3 {
		t.Fatalf("only %d script calls were replayed", hook.replays.Load())
	}
	for i, e := range got {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: a replay was recorded twice", i, e.Seq)
		}
	}
	verifyOK(t, a, 3)
}

func TestAuditAppendRefusesBadEntries(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, nil, AuditConfig{})
	eur := money.Money{Minor: 5, Currency: "xxx"}
	many := make([]string, maxAuditList+1)
	for i := range many {
		many[i] = "a"
	}
	tests := []struct {
		name string
		e    Entry
	}{
		{"no event", Entry{}},
		{"event with spaces", Entry{Event: "tool call"}},
		{"event with upper case", Entry{Event: "Tool_Call"}},
		{"unknown decision", Entry{Event: "x", Decision: "maybe"}},
		{"code that is prose", Entry{Event: "x", Code: "Cap exceeded!"}},
		{"raw arguments as the digest", Entry{Event: "x", ArgsDigest: `{"card":"4242424242424242"}`}},
		{"digest without algorithm", Entry{Event: "x", ArgsDigest: strings.Repeat("a", 64)}},
		{"terminal escape in reason", Entry{Event: "x", Reason: "ok\x1b[2J"}},
		{"newline in principal (log forging)", Entry{Event: "x", Principal: "alice\nevent=commit"}},
		{"invalid UTF-8 in tool", Entry{Event: "x", Tool: "\xff\xfe"}},
		{"oversized reason", Entry{Event: "x", Reason: strings.Repeat("r", maxAuditReason+1)}},
		{"too many actors", Entry{Event: "x", Actors: many}},
		{"empty actor", Entry{Event: "x", Actors: []string{""}}},
		{"unsupported currency", Entry{Event: "x", Amount: &eur}},
		{"detail key with spaces", Entry{Event: "x", Detail: map[string]string{"a b": "c"}}},
		{"short nonce", Entry{Event: "x", Nonce: "abc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Append(context.Background(), tc.e)
			wantCode(t, err, fault.InvalidArgument)
		})
	}
	if n, _ := rdb.XLen(context.Background(), a.chainFor(alice).stream).Result(); n != 0 {
		t.Fatalf("%d refused entries were recorded", n)
	}
}

func TestAuditAppendOwnsChainFields(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, newClock(), AuditConfig{})
	actors := []string{agent}
	e, err := a.Append(context.Background(), Entry{
		Event: "x", ID: "9-9", Seq: 42, Prev: "forged", Hash: "forged", Actors: actors, Nonce: "caller-nonce-1",
		Amount: &money.Money{Minor: 100, Currency: "USD"},
	})
	if err != nil {
		t.Fatal(err)
	}
	actors[0] = "changed later"
	if e.Seq != 1 || e.Prev != GenesisHash || e.Hash == "forged" || e.ID == "9-9" ||
		e.Nonce != "caller-nonce-1" || e.Amount.Currency != "usd" || e.Actors[0] != agent {
		t.Fatalf("append kept caller chain fields or aliased input: %+v", e)
	}
	verifyOK(t, a, 1)
}

// A caller that appends again after an error records a duplicate: same
// content and nonce, next seq, chain intact.
func TestAuditCallerRetryIsDetectableDuplicate(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, newClock(), AuditConfig{})
	in := Entry{Event: "commit", Session: "s1", Nonce: "idem-key-0001"}
	first, err1 := a.Append(context.Background(), in)
	second, err2 := a.Append(context.Background(), in)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if second.Seq != first.Seq+1 || second.Nonce != first.Nonce || second.Prev != first.Hash {
		t.Fatalf("duplicate = %+v after %+v", second, first)
	}
	verifyOK(t, a, 2)
}

func TestAuditRedisDownIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, nil, AuditConfig{Timeout: time.Second})
	ctx := context.Background()

	_, err = a.Append(ctx, Entry{Event: "tool_call", Session: "s1"})
	wantCode(t, err, fault.Unavailable)
	_, err = a.Verify(ctx, nil)
	wantCode(t, err, fault.Unavailable)
	_, err = a.Export(ctx, &bytes.Buffer{}, ExportFilter{})
	wantCode(t, err, fault.Unavailable)
	_, err = a.ForSessions(ctx, map[string]string{"s1": alice})
	wantCode(t, err, fault.Unavailable)
}

// A Redis slower than the timeout refuses the append.
func TestAuditAppendTimeoutIsUnavailable(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAudit(t, rdb, nil, AuditConfig{Timeout: time.Nanosecond})
	_, err := a.Append(context.Background(), Entry{Event: "tool_call"})
	wantCode(t, err, fault.Unavailable)
}

func TestAuditConfigValidate(t *testing.T) {
	for name, cfg := range map[string]AuditConfig{
		"brace in prefix":  {Prefix: "tg{x}"},
		"negative timeout": {Timeout: -1},
		"negative maxlen":  {MaxLen: -1},
	} {
		if _, err := NewAudit(redis.NewClient(&redis.Options{}), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewAudit(nil, AuditConfig{}); err == nil {
		t.Error("nil client accepted")
	}
}

func TestAuditTrimmedStreamVerifies(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	a := newAudit(t, rdb, clk, AuditConfig{MaxLen: 10})
	appendN(t, a, clk, "s1", 350)
	res, err := a.Verify(context.Background(), nil)
	if err != nil || !res.OK || res.Entries >= 350 {
		t.Fatalf("verify trimmed = %+v, %v; want OK over fewer than 350 entries", res, err)
	}
}
