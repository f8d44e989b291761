package mcpsession

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

const (
	alice   = "user:alice@example.com"
	mallory = "user:mallory@example.com"
)

func TestOwners(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		record []string // principals recording "mcp-1", in order
		ask    string
		want   string
	}{
		{"the opener owns its session", []string{alice}, "mcp-1", alice},
		{"a second record cannot take the session over", []string{alice, mallory}, "mcp-1", alice},
		{"an id never opened has no owner", []string{alice}, "mcp-2", ""},
		{"nothing recorded", nil, "mcp-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := testkit.Redis(t)
			t.Cleanup(func() { _ = rdb.Close() })
			o, err := New(rdb)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.record {
				if err := o.Record(ctx, "mcp-1", p); err != nil {
					t.Fatal(err)
				}
			}
			got, err := o.Owner(ctx, tt.ask)
			if err != nil || got != tt.want {
				t.Fatalf("Owner(%q) = %q, %v; want %q", tt.ask, got, err, tt.want)
			}
			if len(tt.record) > 0 {
				if ttl := rdb.TTL(ctx, key("mcp-1")).Val(); ttl <= TTL-time.Minute || ttl > TTL {
					t.Fatalf("TTL %v, want %v", ttl, TTL)
				}
			}
		})
	}
}

// Fail closed: a Redis that does not answer is an error, never "no owner"
// that a caller might mistake for permission to record one.
func TestRedisDownIsAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	o, err := New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := o.Owner(ctx, "mcp-1"); err == nil || got != "" {
		t.Fatalf("Owner = %q, %v; want an error", got, err)
	}
	if err := o.Record(ctx, "mcp-1", alice); err == nil {
		t.Fatal("Record succeeded without Redis")
	}
}

func TestNewRefusesNoClient(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestSessionLimitPerPrincipal(t *testing.T) {
	ctx := context.Background()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	o, err := New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	const limit, idle = 3, time.Minute
	open := func(p, id string) bool {
		t.Helper()
		r, ok, err := o.Reserve(ctx, p, limit, idle)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := o.Opened(ctx, r, id, idle); err != nil {
				t.Fatal(err)
			}
		}
		return ok
	}
	for i, id := range []string{"a1", "a2", "a3"} {
		if !open(alice, id) {
			t.Fatalf("session %d of %d refused", i+1, limit)
		}
	}
	if open(alice, "a4") {
		t.Fatal("a fourth session was opened past the limit of 3")
	}
	// Another principal is not affected.
	if !open(mallory, "m1") {
		t.Fatal("mallory refused because of alice's sessions")
	}
	// Using a session touches it; using someone else's id changes nothing.
	if owner, isOpen, err := o.Used(ctx, "a1", alice, idle); err != nil || owner != alice || !isOpen {
		t.Fatalf("Used(a1, alice) = %q, %v, %v; want alice's open session", owner, isOpen, err)
	}
	if owner, isOpen, err := o.Used(ctx, "a1", mallory, idle); err != nil || owner != alice || isOpen {
		t.Fatalf("Used(a1, mallory) = %q, %v, %v; want owner alice, not open for mallory", owner, isOpen, err)
	}
	if n, _ := o.Count(ctx, mallory, idle); n != 1 {
		t.Fatalf("mallory has %d sessions after using alice's id, want 1", n)
	}
	// A closed session frees its place.
	if err := o.Closed(ctx, alice, "a2"); err != nil {
		t.Fatal(err)
	}
	if !open(alice, "a5") {
		t.Fatal("a closed session's place was not freed")
	}
	// ... and the closed session is gone: its id names no owner any more.
	if owner, isOpen, err := o.Used(ctx, "a2", alice, idle); err != nil || owner != "" || isOpen {
		t.Fatalf("Used(a2) after Closed = %q, %v, %v; want no owner", owner, isOpen, err)
	}
	// A released reservation frees its place too.
	r, ok, err := o.Reserve(ctx, alice, limit+1, idle)
	if err != nil || !ok {
		t.Fatalf("Reserve: %v %v", ok, err)
	}
	if err := o.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, _ := o.Count(ctx, alice, idle); n != 3 {
		t.Fatalf("alice has %d sessions after a released reservation, want 3", n)
	}
	// Sessions idle past the TTL no longer count.
	rdb.ZAdd(ctx, openKey(alice), redis.Z{Score: float64(time.Now().Add(-2 * idle).UnixMilli()), Member: "a3"})
	// An idle session is not open, and using it does not revive it.
	if owner, isOpen, err := o.Used(ctx, "a3", alice, idle); err != nil || owner != alice || isOpen {
		t.Fatalf("Used(a3) idle = %q, %v, %v; want alice's, not open", owner, isOpen, err)
	}
	if !open(alice, "a6") {
		t.Fatal("an idle session still counts against the limit")
	}
}

func TestSessionLimitConcurrent(t *testing.T) {
	ctx := context.Background()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	o, _ := New(rdb)
	const limit = 5
	okc := make(chan bool, 50)
	for i := 0; i < 50; i++ {
		go func() {
			_, ok, err := o.Reserve(ctx, alice, limit, time.Minute)
			okc <- ok && err == nil
		}()
	}
	n := 0
	for i := 0; i < 50; i++ {
		if <-okc {
			n++
		}
	}
	if n != limit {
		t.Fatalf("%d of 50 concurrent reservations taken, want exactly %d", n, limit)
	}
}
