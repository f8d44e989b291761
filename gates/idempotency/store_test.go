package idempotency

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

var (
	argsA = map[string]any{"domain": "example.com", "years": 1}
	argsB = map[string]any{"domain": "example.org", "years": 1}
)

func TestBegin(t *testing.T) {
	dA, dB := digest(t, argsA), digest(t, argsB)
	tests := []struct {
		name string
		// setup prepares the store and returns the principal, key and
		// digest to Begin with.
		setup func(f *fixture) (string, string, string)
		want  State
		code  fault.Code
	}{
		{"new key starts", func(f *fixture) (string, string, string) {
			return alice, "k1", dA
		}, Started, ""},
		{"same key and arguments after completion replay", func(f *fixture) (string, string, string) {
			f.done(alice, "k1", dA, []byte(`{"ok":true}`))
			return alice, "k1", dA
		}, Replay, ""},
		{"same key with other arguments after completion conflicts", func(f *fixture) (string, string, string) {
			f.done(alice, "k1", dA, []byte(`{"ok":true}`))
			return alice, "k1", dB
		}, 0, Conflict},
		{"same key with other arguments while running conflicts", func(f *fixture) (string, string, string) {
			f.started(alice, "k1", dA)
			return alice, "k1", dB
		}, 0, Conflict},
		{"concurrent duplicate is in progress", func(f *fixture) (string, string, string) {
			f.started(alice, "k1", dA)
			return alice, "k1", dA
		}, 0, InProgress},
		{"lock one millisecond before expiry still holds", func(f *fixture) (string, string, string) {
			f.started(alice, "k1", dA)
			f.clock.Advance(DefaultInProgressTTL - time.Millisecond)
			return alice, "k1", dA
		}, 0, InProgress},
		{"expired lock of a crashed call is retaken", func(f *fixture) (string, string, string) {
			f.started(alice, "k1", dA)
			f.clock.Advance(DefaultInProgressTTL)
			return alice, "k1", dA
		}, Started, ""},
		{"expired lock is retaken with other arguments", func(f *fixture) (string, string, string) {
			f.started(alice, "k1", dA)
			f.clock.Advance(DefaultInProgressTTL + time.Second)
			return alice, "k1", dB
		}, Started, ""},
		{"aborted call runs again", func(f *fixture) (string, string, string) {
			out := f.started(alice, "k1", dA)
			if err := f.store.Abort(context.Background(), alice, tool, "k1", out.Fence); err != nil {
				f.t.Fatal(err)
			}
			return alice, "k1", dA
		}, Started, ""},
		{"same raw key under another principal is another record", func(f *fixture) (string, string, string) {
			f.done(alice, "k1", dA, []byte("alice's"))
			return bob, "k1", dB
		}, Started, ""},
		{"derived key replays the identical call", func(f *fixture) (string, string, string) {
			k := DeriveKey(alice, tool, dA)
			f.done(alice, k, dA, []byte("r"))
			return alice, k, dA
		}, Replay, ""},
		{"completed result still replays a day later", func(f *fixture) (string, string, string) {
			f.done(alice, "k1", dA, []byte("r"))
			f.clock.Advance(23 * time.Hour)
			return alice, "k1", dA
		}, Replay, ""},
		{"malformed digest", func(f *fixture) (string, string, string) {
			return alice, "k1", "ABC"
		}, 0, fault.InvalidArgument},
		{"empty key", func(f *fixture) (string, string, string) {
			return alice, "", dA
		}, 0, fault.InvalidArgument},
		{"key longer than 255 bytes", func(f *fixture) (string, string, string) {
			return alice, string(bytes.Repeat([]byte("k"), 256)), dA
		}, 0, fault.InvalidArgument},
		{"key with a newline", func(f *fixture) (string, string, string) {
			return alice, "k\n1", dA
		}, 0, fault.InvalidArgument},
		{"empty principal", func(f *fixture) (string, string, string) {
			return "", "k1", dA
		}, 0, fault.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p, key, d := tt.setup(f)
			out, err := f.begin(p, key, d)
			wantCode(t, err, tt.code)
			if out.State != tt.want {
				t.Fatalf("state %v, want %v", out.State, tt.want)
			}
			if err == nil && out.Key != ScopedKey(p, tool, key) {
				t.Fatalf("outcome key %q, want the scoped key", out.Key)
			}
		})
	}
}

// done runs a call to completion with result.
func (f *fixture) done(principal, key, digest string, result []byte) {
	f.t.Helper()
	out := f.started(principal, key, digest)
	if err := f.complete(principal, key, out.Fence, result); err != nil {
		f.t.Fatalf("complete %q: %v", key, err)
	}
}

func TestReplayReturnsStoredBytes(t *testing.T) {
	big := bytes.Repeat([]byte{0, 0xff, '"', '\n'}, MaxResult/4)
	for _, res := range [][]byte{
		[]byte(`{"content":[{"type":"text","text":"registered"}],"isError":false}`),
		{},
		{0, 1, 2, 0xfe, 0xff},
		big,
	} {
		f := newFixture(t)
		d := digest(t, argsA)
		f.done(alice, "k", d, res)
		for range 3 {
			out, err := f.begin(alice, "k", d)
			wantCode(t, err, "")
			if out.State != Replay || !bytes.Equal(out.Result, res) || out.Fence != "" {
				t.Fatalf("replay of %d bytes: state %v, %d bytes back", len(res), out.State, len(out.Result))
			}
		}
	}
}

func TestResultOverLimitIsNotStored(t *testing.T) {
	f := newFixture(t)
	d := digest(t, argsA)
	out := f.started(alice, "k", d)
	wantCode(t, f.complete(alice, "k", out.Fence, make([]byte, MaxResult+1)), fault.InvalidArgument)
	// The lock is still held by the call; it can still store a smaller result.
	_, err := f.begin(alice, "k", d)
	wantCode(t, err, InProgress)
	wantCode(t, f.complete(alice, "k", out.Fence, []byte("small")), "")
}

func TestConcurrentDuplicatesStartOnce(t *testing.T) {
	f := newFixture(t)
	d := digest(t, argsA)
	const n = 50
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		started int
		busy    int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := f.begin(alice, "same-key", d)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && out.State == Started:
				started++
			case fault.CodeOf(err) == InProgress:
				busy++
			default:
				t.Errorf("begin: %+v, %v", out, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if started != 1 || busy != n-1 {
		t.Fatalf("%d started and %d in progress, want 1 and %d", started, busy, n-1)
	}
}

func TestStaleFenceIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := digest(t, argsA)
	slow := f.started(alice, "k", d)
	f.clock.Advance(DefaultInProgressTTL)
	retry := f.started(alice, "k", d)
	if retry.Fence == slow.Fence {
		t.Fatal("a retaken lock kept the old fence")
	}
	if retry.Key != slow.Key {
		t.Fatal("a retaken lock changed the upstream identity of the call")
	}

	// The overrunning call may neither store its result nor free the key.
	wantCode(t, f.complete(alice, "k", slow.Fence, []byte("slow")), FenceLost)
	wantCode(t, f.store.Abort(ctx, alice, tool, "k", slow.Fence), FenceLost)
	wantCode(t, f.complete(alice, "k", "not-a-fence", []byte("x")), FenceLost)
	_, err := f.begin(alice, "k", d)
	wantCode(t, err, InProgress)

	wantCode(t, f.complete(alice, "k", retry.Fence, []byte("retry")), "")
	// Completing again (go-redis retried the command) is a no-op.
	wantCode(t, f.complete(alice, "k", retry.Fence, []byte("retry")), "")
	wantCode(t, f.complete(alice, "k", slow.Fence, []byte("slow")), FenceLost)
	out, err := f.begin(alice, "k", d)
	wantCode(t, err, "")
	if string(out.Result) != "retry" {
		t.Fatalf("replayed %q, want the successor's result", out.Result)
	}
	// A finished call cannot be aborted.
	wantCode(t, f.store.Abort(ctx, alice, tool, "k", retry.Fence), fault.Internal)
}

func TestCompleteWithoutRecordIsLost(t *testing.T) {
	f := newFixture(t)
	out := f.started(alice, "k", digest(t, argsA))
	// Redis expired the lock (its own TTL) and nobody retook it.
	if err := f.rdb.Del(context.Background(), f.store.keys.record(alice, tool, "k")).Err(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.complete(alice, "k", out.Fence, []byte("late")), FenceLost)
	// Aborting what is gone is fine: the key is free either way.
	wantCode(t, f.store.Abort(context.Background(), alice, tool, "k", out.Fence), "")
}

func TestBeginRetriedByTheClientStillStarts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := digest(t, argsA)
	key := []string{f.store.keys.record(alice, tool, "k")}
	now := f.clock.Now().UnixMilli()
	fence := newFence()
	for i := range 2 {
		r, err := f.store.scripts.begin.Run(ctx, f.rdb, key, now, d, fence, int64(60000)).Slice()
		if err != nil || len(r) != 2 || r[0] != int64(codeStarted) || r[1] != fence {
			t.Fatalf("attempt %d: %v, %v", i, r, err)
		}
	}
}

func TestKeysAreKeptAtLeastADay(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, 48 * time.Hour} {
		rdb := newFixture(t).rdb
		clk := newClock()
		st, err := New(rdb, Config{TTL: ttl, Now: clk.Now, Secret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		d := digest(t, argsA)
		out, err := st.Begin(ctx, alice, tool, "k", d)
		if err != nil {
			t.Fatal(err)
		}
		key := st.keys.record(alice, tool, "k")
		if pt := rdb.PTTL(ctx, key).Val(); pt <= 0 || pt > DefaultInProgressTTL {
			t.Fatalf("in-progress record PTTL %v, want (0, %v]", pt, DefaultInProgressTTL)
		}
		if err := st.Complete(ctx, alice, tool, "k", out.Fence, []byte("r")); err != nil {
			t.Fatal(err)
		}
		want := max(ttl, DefaultTTL)
		if pt := rdb.PTTL(ctx, key).Val(); pt < want-time.Minute || pt > want || pt < MinTTL-time.Minute {
			t.Fatalf("completed record PTTL %v, want about %v and at least a day", pt, want)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero but the secret", Config{Secret: testSecret}, true},
		{"no secret", Config{}, false},
		{"short secret", Config{Secret: []byte("too short")}, false},
		{"ttl below a day", Config{TTL: 23 * time.Hour, Secret: testSecret}, false},
		{"ttl of a day", Config{TTL: 24 * time.Hour, Secret: testSecret}, true},
		{"negative lock", Config{InProgressTTL: -time.Second, Secret: testSecret}, false},
		{"lock longer than the record", Config{InProgressTTL: 25 * time.Hour, Secret: testSecret}, false},
		{"prefix opening a hash tag", Config{Prefix: "tg{x", Secret: testSecret}, false},
		{"negative timeout", Config{Timeout: -1, Secret: testSecret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(redis.NewClient(&redis.Options{}), tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, Config{Secret: testSecret}); err == nil {
		t.Fatal("New accepted a nil client")
	}
}

func TestBeginIsOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	d := digest(t, argsA)
	// A connection in the pool first, so its handshake is not counted.
	if err := f.rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	f.rdb.AddHook(hook)
	f.started(alice, "warm-up", d)
	if n := hook.N.Load(); n > 2 {
		t.Fatalf("cold begin took %d round trips, want at most 2 (EVALSHA, EVAL)", n)
	}
	hook.N.Store(0)
	const calls = 20
	for i := range calls {
		f.started(alice, "k"+string(rune('a'+i)), d)
	}
	_, err := f.begin(alice, "ka", d) // in progress: a refusal costs the same
	wantCode(t, err, InProgress)
	if n := hook.N.Load(); n != calls+1 {
		t.Fatalf("%d begins took %d round trips, want one each", calls+1, n)
	}
}
