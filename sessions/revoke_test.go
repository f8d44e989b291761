package sessions

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// tree builds, for alice:
//
//	root ─┬─ a ─┬─ a1
//	      │     ├─ a2
//	      │     └─ bob:x ── alice:x1     (another principal in the middle)
//	      └─ b ──── b1
//
// and an unrelated alice session "other".
type tree struct {
	root, a, b, a1, a2, b1, x, x1, other Session
}

func (f *fixture) tree() tree {
	var t tree
	t.root = f.create(alice, "")
	t.a = f.create(alice, t.root.ID)
	t.b = f.create(alice, t.root.ID)
	t.a1 = f.create(alice, t.a.ID)
	t.a2 = f.create(alice, t.a.ID)
	t.b1 = f.create(alice, t.b.ID)
	t.x = f.create(bob, member(alice, t.a.ID))
	t.x1 = f.create(alice, member(bob, t.x.ID))
	t.other = f.create(alice, "")
	return t
}

func ids(ss ...Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	slices.Sort(out)
	return out
}

func TestRevokeCascade(t *testing.T) {
	tests := []struct {
		name    string
		revoke  func(tr tree) Session
		revoked func(tr tree) []Session
	}{
		{"root takes the whole tree, across principals",
			func(tr tree) Session { return tr.root },
			func(tr tree) []Session { return []Session{tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1} }},
		{"middle node takes its subtree only",
			func(tr tree) Session { return tr.a },
			func(tr tree) []Session { return []Session{tr.a, tr.a1, tr.a2, tr.x, tr.x1} }},
		{"another principal's node takes its subtree back under the first",
			func(tr tree) Session { return tr.x },
			func(tr tree) []Session { return []Session{tr.x, tr.x1} }},
		{"leaf takes itself",
			func(tr tree) Session { return tr.b1 },
			func(tr tree) []Session { return []Session{tr.b1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			tr := f.tree()
			all := []Session{tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1, tr.other}
			target, want := tt.revoke(tr), tt.revoked(tr)

			f.clock.Advance(time.Minute)
			revokedAt := f.clock.Now()
			got, err := f.store.Revoke(ctx, target.Principal, target.ID, "operator pulled the plug")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, ids(want...)) {
				t.Fatalf("revoked %v, want %v", got, ids(want...))
			}
			for _, s := range all {
				code := fault.Code("")
				if slices.Contains(got, s.ID) {
					code = fault.SessionRevoked
				}
				wantCode(t, f.check(s), code)
				g, err := f.store.Get(ctx, s.Principal, s.ID)
				if err != nil {
					t.Fatal(err)
				}
				if code != "" && (g.Status != StatusRevoked || !g.RevokedAt.Equal(revokedAt) || g.RevokedReason != "operator pulled the plug") {
					t.Fatalf("%s: %+v", s.ID, g)
				}
			}

			// Idempotent: the same ids again, the first time and reason kept.
			f.clock.Advance(time.Minute)
			again, err := f.store.Revoke(ctx, target.Principal, target.ID, "second time")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(again)
			if !slices.Equal(again, got) {
				t.Fatalf("second revoke %v, want %v", again, got)
			}
			g, _ := f.store.Get(ctx, target.Principal, target.ID)
			if !g.RevokedAt.Equal(revokedAt) || g.RevokedReason != "operator pulled the plug" {
				t.Fatalf("second revoke rewrote the first: %+v", g)
			}
		})
	}
}

func TestRevokeRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.create(alice, "")
	tests := []struct {
		name           string
		principal, sid string
		reason         string
		code           fault.Code
	}{
		{"another principal's session id", bob, s.ID, "", fault.NotFound},
		{"session that does not exist", alice, "nope", "", fault.NotFound},
		{"reason with control characters", alice, s.ID, "a\x1b[2Jb", fault.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.store.Revoke(ctx, tt.principal, tt.sid, tt.reason)
			wantCode(t, err, tt.code)
			wantCode(t, f.check(s), "")
		})
	}
}

// After Revoke returns, no Check on any descendant passes, on any
// goroutine, even while checks were hammering the grandchild during the
// revocation.
func TestRevokeRacesChecks(t *testing.T) {
	for i := range 5 {
		f := newFixture(t)
		ctx := context.Background()
		tr := f.tree()
		targets := []Session{tr.a1, tr.x, tr.x1} // grandchild, and across principals

		var returned atomic.Bool
		var passedAfter atomic.Int64
		var checks atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := targets[g%len(targets)]
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := returned.Load()
					err := f.check(s)
					checks.Add(1)
					if after && err == nil {
						passedAfter.Add(1)
					}
					if err != nil && fault.CodeOf(err) != fault.SessionRevoked {
						t.Errorf("check %s: %v", s.ID, err)
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(5+i*3) * time.Millisecond)
		if _, err := f.store.Revoke(ctx, alice, tr.root.ID, "race"); err != nil {
			t.Fatal(err)
		}
		returned.Store(true)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		t.Logf("round %d: %d checks", i, checks.Load())
		if n := passedAfter.Load(); n != 0 {
			t.Fatalf("round %d: %d checks passed after Revoke returned (of %d)", i, n, checks.Load())
		}
	}
}

// Children created while their parent is being revoked either exist and are
// revoked, or were refused: none is active after Revoke returns, under the
// same principal or another.
func TestRevokeRacesChildCreation(t *testing.T) {
	for _, childPrincipal := range []string{alice, bob} {
		t.Run(childPrincipal, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			parent := f.create(alice, "")
			var returned atomic.Bool
			var created sync.Map // sid -> created after Revoke returned
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 30 {
						after := returned.Load()
						s, err := f.store.Create(ctx, Session{
							Principal: childPrincipal, Parent: parent.ID, ParentPrincipal: alice,
							Expires: f.clock.Now().Add(time.Minute),
						})
						switch {
						case err == nil:
							created.Store(s.ID, after)
						case fault.CodeOf(err) != fault.SessionRevoked:
							t.Errorf("create: %v", err)
							return
						}
					}
				}()
			}
			time.Sleep(3 * time.Millisecond)
			if _, err := f.store.Revoke(ctx, alice, parent.ID, "race"); err != nil {
				t.Fatal(err)
			}
			returned.Store(true)
			wg.Wait()
			n := 0
			created.Range(func(any, any) bool { n++; return true })
			t.Logf("%d children created before the revocation, %d refused", n, 8*30-n)
			created.Range(func(k, v any) bool {
				if v.(bool) {
					t.Errorf("child %s created after its parent's Revoke returned", k)
				}
				wantCode(t, f.store.Check(ctx, childPrincipal, k.(string), "j"), fault.SessionRevoked)
				return true
			})
			kids, err := f.store.Children(ctx, alice, parent.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kids {
				if k.Status != StatusRevoked {
					t.Errorf("child %s is %s after its parent's revocation", k.ID, k.Status)
				}
			}
		})
	}
}

func TestRevokeJTI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.create(alice, "")
	exp := f.clock.Now().Add(10 * time.Minute)
	tests := []struct {
		name      string
		principal string
		jti       string
		code      fault.Code
	}{
		{"another principal's session id", bob, "j1", fault.NotFound},
		{"empty jti", alice, "", fault.InvalidArgument},
		{"jti with a newline", alice, "a\nb", fault.InvalidArgument},
		{"deny-lists the token", alice, "j1", ""},
		{"twice is fine", alice, "j1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.store.RevokeJTI(ctx, tt.principal, s.ID, tt.jti, exp), tt.code)
		})
	}
	wantCode(t, f.store.Check(ctx, alice, s.ID, "j1"), TokenRevoked)
	wantCode(t, f.store.Check(ctx, alice, s.ID, "j2"), "")
	wantCode(t, f.store.Check(ctx, bob, s.ID, "j1"), fault.NotFound)

	// The entry lives until exp plus skew, and a later, shorter request
	// does not shorten it.
	key := f.store.keys.jti(alice, "j1")
	want := exp.Sub(f.clock.Now()) + DefaultSkew
	if ttl := f.rdb.PTTL(ctx, key).Val(); ttl > want || ttl < want-time.Minute {
		t.Fatalf("deny-list TTL %v, want about %v", ttl, want)
	}
	if err := f.store.RevokeJTI(ctx, alice, s.ID, "j1", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if ttl := f.rdb.PTTL(ctx, key).Val(); ttl < want-time.Minute {
		t.Fatalf("deny-list TTL shrank to %v", ttl)
	}
	if v := f.rdb.Get(ctx, key).Val(); v != s.ID {
		t.Fatalf("deny-list entry %q, want the session id", v)
	}
}

// afterScript runs fn once, right after script has run on Redis.
type afterScript struct {
	script *redis.Script
	src    string
	once   sync.Once
	fn     func()
}

func (h *afterScript) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *afterScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *afterScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); err == nil && len(args) > 1 && (args[1] == h.script.Hash() || args[1] == h.src) {
			h.once.Do(h.fn)
		}
		return err
	}
}

// A child under another principal is created in three steps on two slots.
// A revocation of the parent landing between any two of them must win.
func TestCrossPrincipalChildInterleavings(t *testing.T) {
	tests := []struct {
		name  string
		after func(s *Store) (*redis.Script, string)
		code  fault.Code // of Create, and of the child's Check afterwards
	}{
		{"parent revoked after the child is written, before the link",
			func(s *Store) (*redis.Script, string) { return s.scripts.create, parentStateLua + createLua },
			fault.NotFound},
		{"parent revoked after the link, before activation",
			func(s *Store) (*redis.Script, string) { return s.scripts.link, parentStateLua + linkLua },
			fault.SessionRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			parent := f.create(alice, "")
			var revoked []string
			script, src := tt.after(f.store)
			f.rdb.AddHook(&afterScript{script: script, src: src, fn: func() {
				var err error
				if revoked, err = f.store.Revoke(ctx, alice, parent.ID, "mid-create"); err != nil {
					t.Error(err)
				}
			}})
			_, err := f.store.Create(ctx, Session{ID: "child", Principal: bob, Parent: parent.ID,
				ParentPrincipal: alice, Expires: f.clock.Now().Add(time.Minute)})
			if revoked == nil {
				t.Fatal("the revocation did not run mid-create")
			}
			wantCode(t, err, fault.SessionRevoked)
			wantCode(t, f.store.Check(ctx, bob, "child", "j"), tt.code)
			if tt.code == fault.SessionRevoked && !slices.Contains(revoked, "child") {
				t.Fatalf("revoke returned %v, want the linked child in it", revoked)
			}
		})
	}
}
