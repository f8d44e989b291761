package sessions

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestCreateThenGetAndLookup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := HashToken("token-1")
	in := Session{
		Principal:            alice,
		Actors:               []string{agent, "spiffe://example.org/agent/planner"},
		ClientID:             agent,
		Scopes:               []string{"dns:read", "domain:register"},
		AuthorizationDetails: json.RawMessage(`[ {"type": "tollgate:resources", "domains": ["shop.example"]} ]`),
		Expires:              f.clock.Now().Add(10*time.Minute + 1234567*time.Nanosecond),
		Description:          "register shop.example\nand point it at the preview",
		TokenHashes:          []string{tok},
	}
	got, err := f.store.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !validID(got.ID) || len(got.ID) != 26 {
		t.Fatalf("assigned id %q, want 26 base32 characters", got.ID)
	}
	if got.Status != StatusActive || !got.Created.Equal(f.clock.Now()) {
		t.Fatalf("status %q created %v", got.Status, got.Created)
	}
	if want := f.clock.Now().Add(10*time.Minute + time.Millisecond); !got.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v (cut to the millisecond)", got.Expires, want)
	}
	if string(got.AuthorizationDetails) != `[{"type":"tollgate:resources","domains":["shop.example"]}]` {
		t.Fatalf("authorization_details %s, want compacted JSON", got.AuthorizationDetails)
	}
	for name, read := range map[string]func() (Session, error){
		"get":    func() (Session, error) { return f.store.Get(ctx, alice, got.ID) },
		"lookup": func() (Session, error) { return f.store.Lookup(ctx, got.ID) },
	} {
		s, err := read()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(s, got) {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, s, got)
		}
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	ok := func() Session {
		return Session{Principal: alice, Expires: now.Add(time.Minute)}
	}
	tests := []struct {
		name   string
		mutate func(*Session)
	}{
		{"empty principal", func(s *Session) { s.Principal = "" }},
		{"principal with a newline", func(s *Session) { s.Principal = "user:a\nuser:b" }},
		{"principal not UTF-8", func(s *Session) { s.Principal = "user:\xff" }},
		{"id with a pipe splits kids members", func(s *Session) { s.ID = "a|b" }},
		{"id with a colon", func(s *Session) { s.ID = "a:b" }},
		{"id with a brace", func(s *Session) { s.ID = "a}" }},
		{"id too long", func(s *Session) { s.ID = strings.Repeat("a", 129) }},
		{"own parent", func(s *Session) { s.ID, s.Parent = "x1", "x1" }},
		{"parent principal without parent", func(s *Session) { s.ParentPrincipal = bob }},
		{"parent id with a pipe", func(s *Session) { s.Parent = "a|b" }},
		{"no expiry", func(s *Session) { s.Expires = time.Time{} }},
		{"already expired", func(s *Session) { s.Expires = now }},
		{"created after expiry", func(s *Session) { s.Created = now.Add(time.Hour) }},
		{"born revoked", func(s *Session) { s.Status = StatusRevoked }},
		{"carries a revocation", func(s *Session) { s.RevokedReason = "x" }},
		{"token hash not hex sha256", func(s *Session) { s.TokenHashes = []string{"raw-token"} }},
		{"authorization_details not JSON", func(s *Session) { s.AuthorizationDetails = json.RawMessage(`{"type":`) }},
		{"scope with a space smuggles two", func(s *Session) { s.Scopes = []string{"dns:read dns:write"} }},
		{"empty actor", func(s *Session) { s.Actors = []string{""} }},
		{"description with NUL", func(s *Session) { s.Description = "a\x00b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.mutate(&in)
			_, err := f.store.Create(context.Background(), in)
			wantCode(t, err, fault.InvalidArgument)
		})
	}
	list, err := f.store.List(context.Background(), ListFilter{})
	if err != nil || len(list) != 0 {
		t.Fatalf("refused creations left %d sessions (%v)", len(list), err)
	}
}

func TestCreateDuplicateIDAcrossPrincipals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.store.Create(ctx, Session{ID: "fixed-id", Principal: alice, Expires: f.clock.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.store.Create(ctx, Session{ID: "fixed-id", Principal: bob, Expires: f.clock.Now().Add(time.Minute)})
	wantCode(t, err, fault.InvalidArgument)
	s, err := f.store.Lookup(ctx, "fixed-id")
	if err != nil || s.Principal != alice || s.ID != first.ID {
		t.Fatalf("lookup after a refused duplicate: %+v, %v", s, err)
	}
}

func TestCreateChild(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the parent reference ("principal|sid" or sid) for a
		// child of alice.
		setup func(f *fixture) string
		code  fault.Code
	}{
		{"active parent", func(f *fixture) string { return f.create(alice, "").ID }, ""},
		{"active parent of another principal", func(f *fixture) string { return member(bob, f.create(bob, "").ID) }, ""},
		{"revoked parent", func(f *fixture) string {
			p := f.create(alice, "")
			f.revoke(p)
			return p.ID
		}, fault.SessionRevoked},
		{"revoked parent of another principal", func(f *fixture) string {
			p := f.create(bob, "")
			f.revoke(p)
			return member(bob, p.ID)
		}, fault.SessionRevoked},
		{"expired parent", func(f *fixture) string {
			p := f.create(alice, "")
			f.clock.Advance(11 * time.Minute)
			return p.ID
		}, fault.SessionExpired},
		{"expired parent of another principal", func(f *fixture) string {
			p := f.create(bob, "")
			f.clock.Advance(11 * time.Minute)
			return member(bob, p.ID)
		}, fault.SessionExpired},
		{"parent that does not exist", func(f *fixture) string { return "no-such-session" }, fault.NotFound},
		{"another principal's session id claimed as own parent", func(f *fixture) string {
			return f.create(bob, "").ID // alice names bob's sid with her own principal
		}, fault.NotFound},
		{"own session id claimed under another principal", func(f *fixture) string {
			return member(bob, f.create(alice, "").ID)
		}, fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			parent := tt.setup(f)
			in := Session{ID: "child", Principal: alice, Expires: f.clock.Now().Add(5 * time.Minute)}
			if p, sid, ok := splitMember(parent); ok {
				in.ParentPrincipal, in.Parent = p, sid
			} else {
				in.Parent = parent
			}
			got, err := f.store.Create(ctx, in)
			wantCode(t, err, tt.code)
			if tt.code != "" {
				// A refused child leaves nothing behind, not even its id.
				_, err := f.store.Lookup(ctx, "child")
				wantCode(t, err, fault.NotFound)
				wantCode(t, f.store.Check(ctx, alice, "child", "j"), fault.NotFound)
				return
			}
			wantCode(t, f.check(got), "")
			pp := in.ParentPrincipal
			if pp == "" {
				pp = alice
			}
			if got.ParentPrincipal != pp {
				t.Fatalf("parent principal %q, want %q", got.ParentPrincipal, pp)
			}
			kids, err := f.store.Children(ctx, pp, in.Parent)
			if err != nil || len(kids) != 1 || kids[0].ID != "child" || kids[0].Principal != alice {
				t.Fatalf("children of the parent: %+v, %v", kids, err)
			}
		})
	}
}

func TestAddToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.create(alice, "")
	h1, h2 := HashToken("t1"), HashToken("t2")

	// An earlier exp never shortens the session.
	if err := f.store.AddToken(ctx, alice, s.ID, h1, s.Expires.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A later one extends it: the session lives with its longest-lived token.
	later := s.Expires.Add(30 * time.Minute)
	if err := f.store.AddToken(ctx, alice, s.ID, h2, later); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddToken(ctx, alice, s.ID, h2, later); err != nil {
		t.Fatalf("adding the same token twice: %v", err)
	}
	got, err := f.store.Get(ctx, alice, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Expires.Equal(later) {
		t.Fatalf("expires %v, want %v", got.Expires, later)
	}
	want := []string{h1, h2}
	if h2 < h1 {
		want = []string{h2, h1}
	}
	if !reflect.DeepEqual(got.TokenHashes, want) {
		t.Fatalf("token hashes %v, want %v", got.TokenHashes, want)
	}
	// The record is kept until the new expiry plus retention.
	ttl := f.rdb.PTTL(ctx, f.store.keys.sess(alice, s.ID)).Val()
	if want := later.Sub(f.clock.Now()) + DefaultRetention; ttl < want-time.Minute || ttl > want {
		t.Fatalf("record TTL %v, want about %v", ttl, want)
	}
	if ttl := f.rdb.PTTL(ctx, f.store.keys.sid(s.ID)).Val(); ttl < later.Sub(f.clock.Now())+DefaultRetention-time.Minute {
		t.Fatalf("id index TTL %v was not extended", ttl)
	}
	// Passing the original expiry no longer expires it.
	f.clock.Advance(15 * time.Minute)
	wantCode(t, f.check(s), "")

	tests := []struct {
		name   string
		setup  func() (principal, sid string)
		hash   string
		exp    time.Time
		wanted fault.Code
	}{
		{"another principal's session id", func() (string, string) { return bob, s.ID }, h1, later, fault.NotFound},
		{"no such session", func() (string, string) { return alice, "nope" }, h1, later, fault.NotFound},
		{"raw token instead of its hash", func() (string, string) { return alice, s.ID }, "eyJhbGciOi", later, fault.InvalidArgument},
		{"token already expired", func() (string, string) { return alice, s.ID }, h1, f.clock.Now(), fault.InvalidArgument},
		{"revoked session gets no new token", func() (string, string) {
			r := f.create(alice, "")
			f.revoke(r)
			return alice, r.ID
		}, h1, later, fault.SessionRevoked},
		{"expired session gets no new token", func() (string, string) {
			r := f.create(alice, "")
			f.clock.Advance(10 * time.Minute)
			return alice, r.ID
		}, h1, later.Add(time.Hour), fault.SessionExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, sid := tt.setup()
			wantCode(t, f.store.AddToken(ctx, p, sid, tt.hash, tt.exp), tt.wanted)
		})
	}
}

func (f *fixture) revoke(s Session) []string {
	f.t.Helper()
	ids, err := f.store.Revoke(context.Background(), s.Principal, s.ID, "test")
	if err != nil {
		f.t.Fatalf("revoke %s: %v", s.ID, err)
	}
	return ids
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"custom prefix", Config{Prefix: "tollgate:prod"}, true},
		{"prefix with a brace breaks hash tags", Config{Prefix: "tg{x}"}, false},
		{"prefix with a space", Config{Prefix: "t g"}, false},
		{"negative retention", Config{Retention: -time.Second}, false},
		{"negative timeout", Config{Timeout: -time.Second}, false},
		{"negative skew", Config{Skew: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New without a Redis client succeeded")
	}
}

// go-redis retries a command after a network error even when the first
// attempt ran; the create script must answer the retry as a success, and
// a different session under the same key as a conflict.
func TestCreateScriptRetryIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	parent := f.create(alice, "")
	sess, err := f.store.prepare(Session{ID: "retried", Principal: alice, Parent: parent.ID,
		Expires: now.Add(time.Minute), TokenHashes: []string{HashToken("t")}}, now)
	if err != nil {
		t.Fatal(err)
	}
	call := func(s Session) int64 {
		fields, err := encode(s)
		if err != nil {
			t.Fatal(err)
		}
		keys, args := f.store.createCall(s, fields, now, s.Expires.Add(time.Hour), false)
		code, err := f.store.scripts.create.Run(ctx, f.rdb, keys, args...).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if c := call(sess); c != codeOK {
		t.Fatalf("first run: %d", c)
	}
	if c := call(sess); c != codeOK {
		t.Fatalf("retry: %d, want ok", c)
	}
	other := sess
	other.Expires = other.Expires.Add(time.Second)
	if c := call(other); c != codeExists {
		t.Fatalf("a different session under the same id: %d, want %d", c, codeExists)
	}
	got, err := f.store.Get(ctx, alice, "retried")
	if err != nil || got.Parent != parent.ID || len(got.TokenHashes) != 1 {
		t.Fatalf("after the retry: %+v, %v", got, err)
	}
}
