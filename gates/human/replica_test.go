package human

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// Replicas, races and the shared sealing key.

// A replica is another process with its own Sealer on the same Redis: it
// opens what the first sealed, and a state used on one is used on all.
func TestReplayedStateOnAnotherReplica(t *testing.T) {
	opt := testkit.RedisOptions(t)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	replica := f.replica(opt)
	ctx := context.Background()

	tok := f.seal(call)
	_, err := replica.Open(ctx, tok, call)
	wantCode(t, err, "")
	_, err = f.sealer.Open(ctx, tok, call)
	wantCode(t, err, StateReplayed)
	_, err = replica.Open(ctx, tok, call)
	wantCode(t, err, StateReplayed)

	// And the other way round.
	tok2, err := replica.Seal(ctx, State{Binding: call, Gates: []Gate{productionGate}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.sealer.Open(ctx, tok2, call)
	wantCode(t, err, "")
	_, err = replica.Open(ctx, tok2, call)
	wantCode(t, err, StateReplayed)
}

// 50 retries carrying one accepted state race on two replicas: exactly one
// proceeds.
func TestConcurrentOpensOfOneState(t *testing.T) {
	opt := testkit.RedisOptions(t)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	sealers := []*Sealer{f.sealer, f.replica(opt)}
	tok := f.seal(call)

	const racers = 50
	var won atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, err := sealers[i%2].Open(context.Background(), tok, call)
			switch {
			case err == nil:
				won.Add(1)
			case fault.CodeOf(err) != StateReplayed:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of %d concurrent opens succeeded, want exactly 1", won.Load(), racers)
	}
}

// If Redis loses its data (a restart without persistence, a flush, a
// failover to an empty replica) the used marks are gone. A state used before
// must not open again: the Sealer sees the key is gone, refuses, and moves
// to a new key.
func TestReplayAfterRedisLostItsMemory(t *testing.T) {
	opt := testkit.RedisOptions(t)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	replica := f.replica(opt)
	ctx := context.Background()

	used, unused := f.seal(call), f.seal(call)
	_, err := f.sealer.Open(ctx, used, call)
	wantCode(t, err, "")
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = f.sealer.Open(ctx, used, call)
	wantCode(t, err, StateInvalid)
	_, err = replica.Open(ctx, used, call)
	wantCode(t, err, StateInvalid)
	// States sealed before the loss are refused too: their marks could not
	// be trusted either.
	_, err = f.sealer.Open(ctx, unused, call)
	wantCode(t, err, StateInvalid)

	// Both replicas converged on one new key: each opens the other's states.
	fresh := f.seal(call)
	_, err = replica.Open(ctx, fresh, call)
	wantCode(t, err, "")
	fresh2, err := replica.Seal(ctx, State{Binding: call, Gates: []Gate{productionGate}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.sealer.Open(ctx, fresh2, call)
	wantCode(t, err, "")
}

// An operator rotates the key by deleting it; a new Sealer (a restarted
// replica) and the running ones agree on the new key.
func TestKeyRotation(t *testing.T) {
	opt := testkit.RedisOptions(t)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	before := f.seal(call)
	if err := rdb.Del(ctx, f.sealer.keys.sealKey()).Err(); err != nil {
		t.Fatal(err)
	}
	restarted := f.replica(opt) // creates the new key
	_, err := restarted.Open(ctx, before, call)
	wantCode(t, err, StateInvalid)
	_, err = f.sealer.Open(ctx, before, call)
	wantCode(t, err, StateInvalid) // and f.sealer adopts the new key
	tok, err := restarted.Seal(ctx, State{Binding: call, Gates: []Gate{productionGate}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.sealer.Open(ctx, tok, call)
	wantCode(t, err, "")
}

// A value under the key that is not a key stops the Sealer from starting;
// it is never overwritten.
func TestMalformedSealKeyRefusesToStart(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	for _, v := range []string{"short", base64.StdEncoding.EncodeToString(make([]byte, 16)), strings.Repeat("A", 44) + "\n"} {
		rdb.Set(ctx, "tg:gates:sealkey", v, 0)
		_, err := NewSealer(ctx, rdb, SealerConfig{})
		wantCode(t, err, fault.Internal)
		if got := rdb.Get(ctx, "tg:gates:sealkey").Val(); got != v {
			t.Fatalf("the key was overwritten with %q", got)
		}
	}
}

func TestSealerSharesOneKeyAndSetsNoTTL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.rdb.Get(ctx, "tg:gates:sealkey").Result()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := base64.StdEncoding.DecodeString(v); err != nil || len(k) != 32 {
		t.Fatalf("seal key %q: %v", v, err)
	}
	if ttl := f.rdb.PTTL(ctx, "tg:gates:sealkey").Val(); ttl != -1 {
		t.Fatalf("seal key TTL %v, want none", ttl)
	}
	if _, err := NewSealer(ctx, f.rdb, SealerConfig{}); err != nil {
		t.Fatal(err)
	}
	if v2 := f.rdb.Get(ctx, "tg:gates:sealkey").Val(); v2 != v {
		t.Fatal("a second Sealer replaced the key")
	}
}

// The used mark lives exactly as long as needed: the state's remaining
// life plus the clock-skew margin.
func TestUsedMarkTTL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.seal(call)
	f.clock.Advance(4 * time.Minute)
	st, err := f.sealer.Open(ctx, tok, call)
	if err != nil {
		t.Fatal(err)
	}
	ttl := f.rdb.PTTL(ctx, f.sealer.keys.used(alice, st.ID)).Val()
	want := DefaultStateTTL - 4*time.Minute + usedMargin
	if ttl > want || ttl < want-5*time.Second {
		t.Fatalf("used mark TTL %v, want about %v", ttl, want)
	}
}
