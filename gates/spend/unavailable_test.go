package spend

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

// Fail closed (SPEC §9.1): a ledger that cannot be reached never answers a
// hold with success, so the caller never calls the provider.
func TestLedgerDownFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		// setup returns a fixture whose Redis is broken after a hold "h"
		// was made on it.
		setup func(t *testing.T) *fixture
	}{
		{"client closed", func(t *testing.T) *fixture {
			f := newFixture(t, Config{})
			f.mustHold("h", usd(100))
			_ = f.rdb.Close()
			return f
		}},
		{"miniredis stopped", func(t *testing.T) *fixture {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}), Config{})
			f.mustHold("h", usd(100))
			mr.Close()
			return f
		}},
		{"redis answers every command with an error", func(t *testing.T) *fixture {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}), Config{})
			f.mustHold("h", usd(100))
			mr.SetError("LOADING Redis is loading the dataset in memory")
			return f
		}},
		{"redis accepts the connection and never answers", func(t *testing.T) *fixture {
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
			return newFixtureOn(t, rdb, Config{Timeout: 200 * time.Millisecond})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.setup(t)
			ctx := context.Background()
			start := time.Now()
			h, err := f.hold("next", usd(100))
			wantCode(t, err, fault.Unavailable)
			if h.State != "" {
				t.Fatalf("a failed hold returned %+v", h)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("hold took %v to fail", time.Since(start))
			}
			// The public message never leaks the cause and says nothing was charged.
			if pub := fault.PublicOf(err); pub != msgHoldDown {
				t.Fatalf("public message %q", pub)
			}
			// A replay of a hold that exists is refused too: the ledger cannot
			// prove it is still open.
			_, err = f.hold("h", usd(100))
			wantCode(t, err, fault.Unavailable)
			wantCode(t, f.ledger.Commit(ctx, alice, "h", usd(100)), fault.Unavailable)
			wantCode(t, f.ledger.Release(ctx, alice, "h", ""), fault.Unavailable)
			wantCode(t, f.ledger.Reconcile(ctx, alice, "h", usd(100), ""), fault.Unavailable)
			_, err = f.ledger.Status(ctx, alice, Stripe)
			wantCode(t, err, fault.Unavailable)
			_, _, _, err = f.ledger.BudgetStatus(ctx, alice, "s", Stripe, usd(100))
			wantCode(t, err, fault.Unavailable)
			_, err = f.ledger.Holds(ctx, HoldFilter{})
			wantCode(t, err, fault.Unavailable)
			_, err = f.ledger.Holds(ctx, HoldFilter{Principal: alice})
			wantCode(t, err, fault.Unavailable)
			_, err = f.ledger.ReapExpired(ctx, alice)
			wantCode(t, err, fault.Unavailable)
			_, err = f.ledger.Get(ctx, alice, "h")
			wantCode(t, err, fault.Unavailable)
		})
	}
}

func TestCancelledContextFailsClosed(t *testing.T) {
	f := newFixture(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "h", Principal: alice, Provider: Stripe, Amount: usd(100)})
	wantCode(t, err, fault.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cause %v, want context.Canceled in the chain", err)
	}
	f.wantMoney(0, 0)
}

// Redis comes back after an outage: the ledger works again, and what was
// held before is still held.
func TestLedgerRecoversWhenRedisReturns(t *testing.T) {
	mr := miniredis.RunT(t)
	addr := mr.Addr()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb, Config{})
	f.mustHold("before", usd(4000))
	mr.SetError("LOADING Redis is loading the dataset in memory")
	_, err := f.hold("during", usd(100))
	wantCode(t, err, fault.Unavailable)
	mr.SetError("")
	f.mustHold("after", usd(6000))
	if _, err := f.hold("over", usd(1)); fault.CodeOf(err) != CapExceeded {
		t.Fatalf("hold past the cap after recovery: %v", err)
	}
	f.wantMoney(0, 10000)
}

// The script cache is flushed on miniredis, not on the shared redis-server,
// so that round-trip counts of parallel tests elsewhere stay exact.
func TestSurvivesScriptCacheFlush(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb, Config{})
	ctx := context.Background()
	f.mustHold("a", usd(100))
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f.mustHold("b", usd(100))
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.ledger.Commit(ctx, alice, "a", usd(100)), "")
	f.wantMoney(100, 100)
}
