package fuse_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func setStep(key, val string) fuse.Step {
	return fuse.Step{Name: "set", Body: "redis.call('SET', KEYS[1], ARGV[1]) return 1", Continue: "true",
		Keys: []string{key}, Args: []any{val}}
}

// With the replica in sync, a waited script is acknowledged by it, its
// write is on the replica when Run returns, and it costs one round trip
// (the script and WAIT in one pipeline), also after the master forgot the
// script (NOSCRIPT: the text is sent again).
func TestRunWaitAcknowledged(t *testing.T) {
	r := testkit.StartReplicated(t)
	ctx := context.Background()
	hook := &testkit.CountHook{}
	r.Master.AddHook(hook)
	w := fuse.Wait{Replicas: 1, Timeout: time.Second}
	for i, val := range []string{"1", "2", "3"} {
		if i == 2 {
			if err := r.Master.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		hook.N.Store(0)
		res, acks, err := fuse.RunWait(ctx, r.Master, w, setStep("{w}:k", val))
		if err != nil || res.Stopped != -1 || acks != 1 {
			t.Fatalf("run %d: %+v, %d acks, %v; want the step run and 1 ack", i, res, acks, err)
		}
		if got := r.Replica.Get(ctx, "{w}:k").Val(); got != val {
			t.Fatalf("run %d: the replica has %q right after the acknowledged write, want %q", i, got, val)
		}
		if want := int64(1); i == 1 && hook.N.Load() != want {
			t.Fatalf("a waited run of a known script made %d round trips, want %d", hook.N.Load(), want)
		}
	}
}

// A paused replica acknowledges nothing: the script still runs on the
// master, Run answers 0 acknowledgements within about the timeout, and
// Acks says short.
func TestRunWaitShort(t *testing.T) {
	r := testkit.StartReplicated(t)
	ctx := context.Background()
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	wctx, acks := fuse.WithWait(ctx, fuse.Wait{Replicas: 1, Timeout: 100 * time.Millisecond})
	start := time.Now()
	if _, err := fuse.Run(wctx, r.Master, setStep("{w}:k", "x")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !acks.Short() || acks.Got != 0 || acks.Asked != 1 {
		t.Fatalf("acks %+v, want 0 of 1 (short)", *acks)
	}
	if took < 90*time.Millisecond || took > 2*time.Second {
		t.Fatalf("the waited run took %s, want about the 100ms timeout", took)
	}
	if got := r.Master.Get(ctx, "{w}:k").Val(); got != "x" {
		t.Fatalf("the master has %q, want the script's write", got)
	}
}

// Without waiting (Replicas 0, in ctx or not) Run sends exactly what it
// sent before: one EVALSHA of a known script, no WAIT.
func TestRunNoWaitAddsNothing(t *testing.T) {
	rdb := testkit.Redis(t)
	ctx := context.Background()
	if _, err := fuse.Run(ctx, rdb, setStep("{w}:k", "1")); err != nil {
		t.Fatal(err)
	}
	hook := &testkit.CountHook{}
	rdb.AddHook(hook)
	wctx, acks := fuse.WithWait(ctx, fuse.Wait{Replicas: 0, Timeout: time.Second})
	for _, c := range []context.Context{ctx, wctx} {
		hook.N.Store(0)
		if _, err := fuse.Run(c, rdb, setStep("{w}:k", "1")); err != nil {
			t.Fatal(err)
		}
		if hook.N.Load() != 1 {
			t.Fatalf("an unwaited run made %d calls, want 1", hook.N.Load())
		}
	}
	if acks.Short() {
		t.Fatal("no wait asked, yet short")
	}
}

// On a Cluster the script and its WAIT go to the master of the key's
// slot: a key of the replicated master is acknowledged by its replica
// every time, a key of the master without one never (a WAIT sent to
// another node would answer otherwise now and then).
func TestRunWaitOnClusterGoesToTheKeysMaster(t *testing.T) {
	cc := testkit.StartClusterReplicated(t)
	ctx := fuse.Strict(context.Background())
	withReplica := testkit.ClusterKeyIn(t, cc, 0, 8191)
	without := testkit.ClusterKeyIn(t, cc, 8192, 16383)
	w := fuse.Wait{Replicas: 1, Timeout: 20 * time.Millisecond}
	for i := range 10 {
		_, acks, err := fuse.RunWait(ctx, cc, w, setStep(withReplica+":k", "1"))
		if err != nil || acks != 1 {
			t.Fatalf("run %d on the replicated master: %d acks, %v; want 1", i, acks, err)
		}
		_, acks, err = fuse.RunWait(ctx, cc, w, setStep(without+":k", "1"))
		if err != nil || acks != 0 {
			t.Fatalf("run %d on the master without a replica: %d acks, %v; want 0", i, acks, err)
		}
	}
}
