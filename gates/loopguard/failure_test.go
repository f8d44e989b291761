package loopguard

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
		name  string
		guard func(t *testing.T) *Guard
	}{
		{"client closed", func(t *testing.T) *Guard {
			f := newFixture(t)
			f.allowN(call("s1"), 1)
			_ = f.rdb.Close()
			return f.guard
		}},
		{"redis stopped", func(t *testing.T) *Guard {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}), Config{})
			f.allowN(call("s1"), 1)
			mr.Close()
			return f.guard
		}},
		{"redis answers every command with an error", func(t *testing.T) *Guard {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}), Config{})
			f.allowN(call("s1"), 1)
			mr.SetError("LOADING Redis is loading the dataset in memory")
			return f.guard
		}},
		{"redis accepts the connection and never answers", func(t *testing.T) *Guard {
			g, err := New(silentRedis(t), Config{Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := tt.guard(t)
			start := time.Now()
			err := g.Allow(context.Background(), call("s1"))
			wantCode(t, err, fault.Unavailable)
			if pub := fault.PublicOf(err); pub != msgAllowDown {
				t.Fatalf("public message %q leaks or misleads", pub)
			}
			wantCode(t, g.Refused(context.Background(), call("s1"), "cap_exceeded"), fault.Unavailable)
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
	err := f.guard.Allow(ctx, call("s1"))
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
