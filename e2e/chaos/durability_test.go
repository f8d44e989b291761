package chaos

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestDurability: one AOF-backed redis-server (appendonly yes, appendfsync
// always, as docs/durability.md asks), two tollgate replicas and paid calls
// from two principals. Under load the redis-server is killed with SIGKILL
// and restarted from its append-only file, then a tollgate replica is
// killed with SIGKILL in the middle of paid calls and restarted. Nothing
// committed and acknowledged to an agent may be missing afterwards: every
// success the agent was told of is charged once, in the ledger and in the
// audit trail, the trail verifies, every provider charge has a commit or a
// hold (a crashed call's hold stays until it expires or an operator
// reconciles it), and every success replays with its idempotency key.
//
// It runs with the chaos suite (TOLLGATE_CHAOS=short or full).
func TestDurability(t *testing.T) {
	chaosProfile(t)
	began := time.Now()
	bin := testkit.Binary(t)
	port := freePort(t)
	dir, err := os.MkdirTemp("", "tollgate-durability-")
	if err != nil {
		t.Fatal(err)
	}
	rs := &redisNode{Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	if err := rs.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.kill9(); _ = os.RemoveAll(dir) })
	redisURL := "redis://" + rs.Addr

	providers, reps, people, calls := setup(t, bin, redisURL, 2, 2, 30)
	f := newFleet(reps...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var faultLog []string
	note := func(format string, args ...any) {
		line := fmt.Sprintf("%6.1fs  ", time.Since(began).Seconds()) + fmt.Sprintf(format, args...)
		faultLog = append(faultLog, line)
		t.Log(line)
	}
	loadStart := time.Now()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		sleep(ctx, 1500*time.Millisecond)
		note("kill -9 redis-server %s (AOF, appendfsync always)", rs.Addr)
		rs.kill9()
		sleep(ctx, 500*time.Millisecond)
		if err := rs.start(); err != nil {
			note("redis-server did not restart: %v", err)
			return
		}
		note("redis-server restarted from its append-only file")

		sleep(ctx, 1500*time.Millisecond)
		victim, most := 0, int64(-1)
		for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait) && most <= 0; sleep(ctx, 20*time.Millisecond) {
			for i := range f.replicas {
				if n := f.inflight[i].Load(); n > most {
					victim, most = i, n
				}
			}
		}
		r := f.replicas[victim]
		note("kill -9 %s with %d calls in flight", r.Name, most)
		r.kill9()
		sleep(ctx, 300*time.Millisecond)
		if err := r.start(); err != nil {
			note("%s did not restart: %v", r.Name, err)
		} else {
			note("%s restarted", r.Name)
		}
	}()
	f.runLoad(ctx, calls, 6*time.Second, 40)
	<-faultsDone
	note("load done: %d paid calls in %s", len(calls), time.Since(loadStart).Round(time.Millisecond))

	// Once more: kill -9 the redis-server after the load, so that every
	// acknowledged write must come back from the append-only file alone.
	rs.kill9()
	if err := rs.start(); err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if err := r.waitHealthy(30 * time.Second); err != nil {
			t.Fatalf("%s after the redis-server restart: %v", r.Name, err)
		}
	}
	note("redis-server killed and restarted once more after the load")

	var succeeded, replays []*paidCall
	for _, c := range calls {
		if c.Code == "" {
			succeeded = append(succeeded, c)
			replays = append(replays, &paidCall{P: c.P, Token: c.Token, Domain: c.Domain, Key: c.Key})
		}
	}
	f.runLoad(ctx, replays, 0, 10)
	rep := check(t, bin, redisURL, providers.URL, people, calls)
	rep.replayed, rep.noServe = len(replays), true
	for i, r := range replays {
		if r.Code != "" || r.RegID != succeeded[i].RegID {
			rep.replayDiffers++
			if len(rep.replayBad) < 5 {
				rep.replayBad = append(rep.replayBad, fmt.Sprintf("%s: first %s, replay %q %s", r.Domain, succeeded[i].RegID, r.Code, r.RegID))
			}
		}
	}
	if !rep.print(t, profile{Name: "durability"}, faultLog, time.Since(began)) {
		for _, r := range append([]*replica{providers}, reps...) {
			log := r.stderr()
			if len(log) > 4000 {
				log = "…" + log[len(log)-4000:]
			}
			t.Logf("%s stderr:\n%s", r.Name, log)
		}
	}
}
