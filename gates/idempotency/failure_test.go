package idempotency

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestFailsClosedWhenRedisIsDown(t *testing.T) {
	tests := []struct {
		name string
		// setup returns a store whose Redis is broken after a call was
		// started on it, and that call's fence.
		setup func(t *testing.T) (*Store, string)
	}{
		{"client closed", func(t *testing.T) (*Store, string) {
			f := newFixture(t)
			out := f.started(alice, "k", digest(t, argsA))
			_ = f.rdb.Close()
			return f.store, out.Fence
		}},
		{"redis stopped", func(t *testing.T) (*Store, string) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}))
			out := f.started(alice, "k", digest(t, argsA))
			mr.Close()
			return f.store, out.Fence
		}},
		{"redis answers every command with an error", func(t *testing.T) (*Store, string) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}))
			out := f.started(alice, "k", digest(t, argsA))
			mr.SetError("LOADING Redis is loading the dataset in memory")
			return f.store, out.Fence
		}},
		{"redis accepts the connection and never answers", func(t *testing.T) (*Store, string) {
			rdb := silentRedis(t)
			st, err := New(rdb, Config{Timeout: 200 * time.Millisecond, Secret: testSecret})
			if err != nil {
				t.Fatal(err)
			}
			return st, newFence()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, fence := tt.setup(t)
			ctx := context.Background()
			start := time.Now()
			_, err := st.Begin(ctx, alice, tool, "k", digest(t, argsA))
			wantCode(t, err, fault.Unavailable)
			if pub := fault.PublicOf(err); pub != msgBeginDown {
				t.Fatalf("public message %q leaks or misleads", pub)
			}
			wantCode(t, st.Complete(ctx, alice, tool, "k", fence, []byte("r")), fault.Unavailable)
			wantCode(t, st.Abort(ctx, alice, tool, "k", fence), fault.Unavailable)
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v to fail", time.Since(start))
			}
		})
	}
}

func TestCancelledContextFailsClosed(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.store.Begin(ctx, alice, tool, "k", digest(t, argsA))
	wantCode(t, err, fault.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cause %v, want context.Canceled in the chain", err)
	}
}

// silentRedis is a client of a server that accepts connections and never
// answers.
func silentRedis(t *testing.T) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	t.Cleanup(func() {
		_ = l.Close()
		for {
			select {
			case c := <-conns:
				_ = c.Close()
			default:
				return
			}
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				_ = c.Close()
			}
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1,
		ContextTimeoutEnabled: true, DisableIdentity: true, Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
