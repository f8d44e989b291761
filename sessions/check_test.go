package sessions

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the principal, sid and jti to check.
		setup func(f *fixture) (string, string, string)
		code  fault.Code
	}{
		{"active session passes", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			return alice, s.ID, "j1"
		}, ""},
		{"another principal's session id", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			return bob, s.ID, "j1"
		}, fault.NotFound},
		{"session id that never existed", func(f *fixture) (string, string, string) {
			return alice, "aaaaaaaaaaaaaaaaaaaaaaaaaa", "j1"
		}, fault.NotFound},
		{"malformed session id", func(f *fixture) (string, string, string) {
			return alice, "../sess:x", "j1"
		}, fault.NotFound},
		{"revoked session", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.revoke(s)
			return alice, s.ID, "j1"
		}, fault.SessionRevoked},
		{"expired session (clock passes expiry)", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.clock.Advance(10*time.Minute + time.Millisecond)
			return alice, s.ID, "j1"
		}, fault.SessionExpired},
		{"expiry instant itself is expired", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.clock.Advance(10 * time.Minute)
			return alice, s.ID, "j1"
		}, fault.SessionExpired},
		{"revoked and expired reads as revoked", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.revoke(s)
			f.clock.Advance(time.Hour)
			return alice, s.ID, "j1"
		}, fault.SessionRevoked},
		{"deny-listed jti", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.revokeJTI(s, "j1")
			return alice, s.ID, "j1"
		}, TokenRevoked},
		{"another jti of a session with one deny-listed", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.revokeJTI(s, "j1")
			return alice, s.ID, "j2"
		}, ""},
		{"same jti deny-listed for another principal only", func(f *fixture) (string, string, string) {
			f.revokeJTI(f.create(bob, ""), "j1")
			return alice, f.create(alice, "").ID, "j1"
		}, ""},
		{"session being created under another principal's parent (pending)", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.rdb.HSet(context.Background(), f.store.keys.sess(alice, s.ID), fStatus, string(statusPending))
			return alice, s.ID, "j1"
		}, fault.NotFound},
		{"unknown stored status", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.rdb.HSet(context.Background(), f.store.keys.sess(alice, s.ID), fStatus, "ACTIVE")
			return alice, s.ID, "j1"
		}, fault.NotFound},
		{"record stored under another principal's key", func(f *fixture) (string, string, string) {
			s := f.create(alice, "")
			f.rdb.HSet(context.Background(), f.store.keys.sess(alice, s.ID), fPrincipal, bob)
			return alice, s.ID, "j1"
		}, fault.NotFound},
		{"no jti", func(f *fixture) (string, string, string) {
			return alice, f.create(alice, "").ID, ""
		}, fault.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p, sid, jti := tt.setup(f)
			wantCode(t, f.store.Check(context.Background(), p, sid, jti), tt.code)
		})
	}
}

func (f *fixture) revokeJTI(s Session, jti string) {
	f.t.Helper()
	if err := f.store.RevokeJTI(context.Background(), s.Principal, s.ID, jti, f.clock.Now().Add(10*time.Minute)); err != nil {
		f.t.Fatal(err)
	}
}

// countHook counts round trips (testkit.CountHook).
type countHook = testkit.CountHook

func TestCheckIsOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	s := f.create(alice, "")
	hook := &countHook{}
	f.rdb.AddHook(hook)

	// Warm-up: the first call on a Redis that has not seen the script pays
	// one EVALSHA answered NOSCRIPT, then one EVAL that caches it.
	wantCode(t, f.check(s), "")
	if n := hook.N.Load(); n > 2 {
		t.Fatalf("cold check took %d round trips, want at most 2 (EVALSHA, EVAL)", n)
	}

	const calls = 50
	hook.N.Store(0)
	for range calls {
		wantCode(t, f.check(s), "")
	}
	if n := hook.N.Load(); n != calls {
		t.Fatalf("%d checks took %d round trips, want exactly one each", calls, n)
	}

	// Refusals cost the same single round trip.
	f.revokeJTI(s, "jti-"+s.ID)
	hook.N.Store(0)
	wantCode(t, f.check(s), TokenRevoked)
	f.revoke(s)
	wantCode(t, f.check(s), fault.SessionRevoked)
	if n := hook.N.Load(); n != 1+2 {
		t.Fatalf("two refused checks and a revoke took %d round trips, want 3", n)
	}
}

func TestCheckFailsClosedWhenRedisIsDown(t *testing.T) {
	tests := []struct {
		name string
		// setup returns a store whose Redis is broken after a session was
		// created on it, and that session.
		setup func(t *testing.T) (*Store, Session)
	}{
		{"client closed", func(t *testing.T) (*Store, Session) {
			f := newFixture(t)
			s := f.create(alice, "")
			_ = f.rdb.Close()
			return f.store, s
		}},
		{"miniredis stopped", func(t *testing.T) (*Store, Session) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}))
			s := f.create(alice, "")
			mr.Close()
			return f.store, s
		}},
		{"miniredis answers every command with an error", func(t *testing.T) (*Store, Session) {
			mr := miniredis.RunT(t)
			f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1}))
			s := f.create(alice, "")
			mr.SetError("LOADING Redis is loading the dataset in memory")
			return f.store, s
		}},
		{"redis accepts the connection and never answers", func(t *testing.T) (*Store, Session) {
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
			st, err := New(rdb, Config{Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return st, Session{Principal: alice, ID: "some-session"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, s := tt.setup(t)
			start := time.Now()
			err := st.Check(context.Background(), s.Principal, s.ID, "j1")
			wantCode(t, err, fault.Unavailable)
			if time.Since(start) > 5*time.Second {
				t.Fatalf("check took %v to fail", time.Since(start))
			}
			// The public message never leaks the cause.
			if pub := fault.PublicOf(err); pub != msgCheckDown {
				t.Fatalf("public message %q", pub)
			}
			// The other operations fail closed too.
			ctx := context.Background()
			_, err = st.Revoke(ctx, s.Principal, s.ID, "x")
			wantCode(t, err, fault.Unavailable)
			_, err = st.Get(ctx, s.Principal, s.ID)
			wantCode(t, err, fault.Unavailable)
			_, err = st.Create(ctx, Session{Principal: alice, Expires: time.Now().AddDate(10, 0, 0)})
			wantCode(t, err, fault.Unavailable)
		})
	}
}

func TestCheckCancelledContextFailsClosed(t *testing.T) {
	f := newFixture(t)
	s := f.create(alice, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.store.Check(ctx, alice, s.ID, "j1")
	wantCode(t, err, fault.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cause %v, want context.Canceled in the chain", err)
	}
}

// The script cache is flushed on miniredis, not on the shared redis-server,
// so that round-trip counts of parallel tests elsewhere stay exact.
func TestCheckSurvivesScriptCacheFlush(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	s := f.create(alice, "")
	wantCode(t, f.check(s), "")
	hook := &countHook{}
	f.rdb.AddHook(hook)

	// NOSCRIPT falls back to EVAL: still an answer, never an error or a pass.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	hook.N.Store(0)
	wantCode(t, f.check(s), "")
	if n := hook.N.Load(); n != 2 {
		t.Fatalf("check after a flush took %d round trips, want 2 (EVALSHA, EVAL)", n)
	}
	f.revoke(s)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.check(s), fault.SessionRevoked)
}
