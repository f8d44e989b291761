package human

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

// Fail closed: a gate store that cannot be reached never answers yes. No
// state opens, no approval is decided or used, no consent is assumed.
func TestGateStoreDownFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		// setup returns a fixture whose Redis breaks when the returned
		// function is called; the fixture holds a sealed state and an
		// approved approval made while it worked.
		setup func(t *testing.T) (*fixture, func())
	}{
		{"client closed", func(t *testing.T) (*fixture, func()) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}))
			return f, func() { _ = f.rdb.(*redis.Client).Close() }
		}},
		{"redis stopped", func(t *testing.T) (*fixture, func()) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}))
			return f, mr.Close
		}},
		{"redis answers every command with an error", func(t *testing.T) (*fixture, func()) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1}))
			return f, func() { mr.SetError("LOADING Redis is loading the dataset in memory") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, breakIt := tt.setup(t)
			ctx := context.Background()
			tok := f.seal(call)
			a := f.create(purchase(call))
			f.decide(a.ID, alice, true)
			pending := f.create(purchase(call))
			if err := f.consents.Remember(ctx, alice, "stripe", Billing, ""); err != nil {
				t.Fatal(err)
			}
			breakIt()

			st, err := f.sealer.Open(ctx, tok, call)
			wantCode(t, err, fault.Unavailable)
			if st.ID != "" {
				t.Fatalf("a failed open returned %+v", st)
			}
			if pub := fault.PublicOf(err); pub != msgGateDown {
				t.Fatalf("public message %q", pub)
			}
			_, err = f.approvals.Consume(ctx, a.ID, call)
			wantCode(t, err, fault.Unavailable)
			_, err = f.approvals.Decide(ctx, pending.ID, alice, true, "page")
			wantCode(t, err, fault.Unavailable)
			_, err = f.approvals.Create(ctx, purchase(call))
			wantCode(t, err, fault.Unavailable)
			_, err = f.approvals.Get(ctx, a.ID)
			wantCode(t, err, fault.Unavailable)
			_, err = f.approvals.List(ctx, alice, false)
			wantCode(t, err, fault.Unavailable)
			ids, _, err := f.approvals.IDs(ctx, 10)
			wantCode(t, err, fault.Unavailable)
			if len(ids) != 0 {
				t.Fatalf("a failed IDs returned %v", ids)
			}
			ok, err := f.consents.Has(ctx, alice, "stripe", Billing, "")
			wantCode(t, err, fault.Unavailable)
			if ok {
				t.Fatal("Has reported a consent it could not read")
			}
			wantCode(t, f.consents.Remember(ctx, alice, "cloudflare", Terms, "1"), fault.Unavailable)
			_, err = NewSealer(ctx, f.rdb, SealerConfig{})
			wantCode(t, err, fault.Unavailable)
		})
	}
}

// A Redis that accepts connections and never answers costs the Timeout,
// then refuses.
func TestHungRedisTimesOut(t *testing.T) {
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
	ctx := context.Background()
	start := time.Now()
	_, err = NewSealer(ctx, rdb, SealerConfig{Timeout: 200 * time.Millisecond})
	wantCode(t, err, fault.Unavailable)
	ap, _ := NewApprovals(rdb, ApprovalsConfig{Timeout: 200 * time.Millisecond})
	_, err = ap.Consume(ctx, "x", call)
	wantCode(t, err, fault.Unavailable)
	cs, _ := NewConsents(rdb, ConsentsConfig{Timeout: 200 * time.Millisecond})
	_, err = cs.Has(ctx, alice, "stripe", Billing, "")
	wantCode(t, err, fault.Unavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("three refusals took %v", d)
	}
}

func TestCancelledContextFailsClosed(t *testing.T) {
	f := newFixture(t)
	tok := f.seal(call)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.sealer.Open(ctx, tok, call)
	wantCode(t, err, fault.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cause %v, want context.Canceled in the chain", err)
	}
	// Nothing was marked used: the state still opens.
	_, err = f.sealer.Open(context.Background(), tok, call)
	wantCode(t, err, "")
}

// The script cache is flushed on miniredis, not on the shared redis-server,
// so that round-trip counts of parallel tests elsewhere stay exact.
func TestSurvivesScriptCacheFlush(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	a := f.create(purchase(call))
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f.decide(a.ID, alice, true)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := f.approvals.Consume(ctx, a.ID, call)
	wantCode(t, err, "")
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b := f.create(purchase(call))
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if l, err := f.approvals.List(ctx, alice, true); err != nil || len(l) != 1 || l[0].ID != b.ID {
		t.Fatalf("list after a flush: %v, %v", l, err)
	}
}
