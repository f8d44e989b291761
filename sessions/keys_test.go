package sessions

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// hashTag is the part of key Redis Cluster hashes: the text between the
// first '{' and the next '}', when not empty; else the whole key.
func hashTag(key string) string {
	s := strings.IndexByte(key, '{')
	if s < 0 {
		return key
	}
	e := strings.IndexByte(key[s+1:], '}')
	if e <= 0 {
		return key
	}
	return key[s+1 : s+1+e]
}

// unescapePrincipal inverts escapePrincipal; that it exists is what makes
// the escaping injective.
func unescapePrincipal(e string) string {
	return strings.NewReplacer("%25", "%", "%7B", "{", "%7D", "}").Replace(e)
}

var craftedPrincipals = []string{
	alice,
	"user:alice@example.com}",
	"{user:alice@example.com}",
	"user:mallory}{user:alice@example.com",
	"user:}{",
	"}",
	"{",
	"{}",
	"user:a%7Db",
	"user:a}b",
	"user:a}:jti:x",
	"user:a|b",
	"spiffe://example.org/agent/{deployer}",
}

func TestPrincipalKeysCannotCollide(t *testing.T) {
	ks := keyspace{prefix: DefaultPrefix}
	const sid = "s1"
	jtis := []string{"j", "}:jti:j", "{x}", "j}{"}
	tags := map[string]string{}
	keys := map[string]string{}
	for _, p := range craftedPrincipals {
		tag := escapePrincipal(p)
		if tag == "" || strings.ContainsAny(tag, "{}") {
			t.Fatalf("%q: tag %q can be broken", p, tag)
		}
		if other, dup := tags[tag]; dup {
			t.Fatalf("%q and %q share the hash tag %q", p, other, tag)
		}
		tags[tag] = p
		mine := []string{ks.sess(p, sid), ks.toks(p, sid), ks.kids(p, sid), ks.index(p), ks.base(p) + "x"}
		for _, j := range jtis {
			mine = append(mine, ks.jti(p, j))
		}
		for _, k := range mine {
			// One principal, one slot: every script's keys hash alike.
			if got := hashTag(k); got != tag {
				t.Fatalf("%q: key %q hashes %q, want %q", p, k, got, tag)
			}
			if other, dup := keys[k]; dup {
				t.Fatalf("%q and %q share the key %q", p, other, k)
			}
			keys[k] = p
		}
	}
}

// Exhaustive over short strings of the characters that matter: distinct
// principals never escape alike, and escaping round-trips.
func TestEscapePrincipalIsInjective(t *testing.T) {
	alphabet := []string{"a", "{", "}", "%", "7", "D"}
	seen := map[string]string{}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		if prefix != "" {
			e := escapePrincipal(prefix)
			if other, dup := seen[e]; dup {
				t.Fatalf("%q and %q both escape to %q", prefix, other, e)
			}
			seen[e] = prefix
			if u := unescapePrincipal(e); u != prefix {
				t.Fatalf("%q escapes to %q, which unescapes to %q", prefix, e, u)
			}
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, n-1)
		}
	}
	walk("", 5)
}

func FuzzEscapePrincipal(f *testing.F) {
	for _, p := range craftedPrincipals {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		e := escapePrincipal(p)
		if strings.ContainsAny(e, "{}") {
			t.Fatalf("%q escapes to %q, which contains a brace", p, e)
		}
		if u := unescapePrincipal(e); u != p {
			t.Fatalf("%q escapes to %q, which unescapes to %q", p, e, u)
		}
		if validPrincipal(p) {
			k := keyspace{prefix: DefaultPrefix}
			if hashTag(k.sess(p, "s")) != hashTag(k.jti(p, "}{")) {
				t.Fatalf("%q: session and jti keys on different slots", p)
			}
		}
	})
}

func FuzzMember(f *testing.F) {
	f.Add(alice, "s1")
	f.Add("user:a|b", "c")
	f.Add("|", "x")
	f.Fuzz(func(t *testing.T, p, sid string) {
		if !validPrincipal(p) || !validID(sid) {
			return // Create never links such a pair
		}
		gp, gs, ok := splitMember(member(p, sid))
		if !ok || gp != p || gs != sid {
			t.Fatalf("member(%q, %q) splits into %q, %q", p, sid, gp, gs)
		}
	})
}

// The same attacks through the Store, against real Redis.
func TestBracePrincipalsStayApart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	exp := f.clock.Now().Add(time.Hour)

	// With naive keys, "tg:{user:a}:jti:" + "x}:jti:y" and
	// "tg:{user:a}:jti:x}:jti:y" + ... are the same key: a principal could
	// deny-list (or read) another's token ids.
	victim, err := f.store.Create(ctx, Session{Principal: "user:a", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := f.store.Create(ctx, Session{Principal: "user:a}:jti:x", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.RevokeJTI(ctx, attacker.Principal, attacker.ID, "y", exp); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.store.Check(ctx, attacker.Principal, attacker.ID, "y"), TokenRevoked)
	wantCode(t, f.store.Check(ctx, victim.Principal, victim.ID, "x}:jti:y"), "")

	// "}{" in a principal neither reaches alice's sessions nor shares her
	// listing, and revoking everything of it leaves hers alone.
	mine := f.create(alice, "")
	for _, p := range craftedPrincipals[1:] {
		s, err := f.store.Create(ctx, Session{Principal: p, Expires: exp})
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		wantCode(t, f.store.Check(ctx, p, mine.ID, "j"), fault.NotFound)
		wantCode(t, f.store.Check(ctx, alice, s.ID, "j"), fault.NotFound)
		if _, err := f.store.Revoke(ctx, p, mine.ID, "x"); fault.CodeOf(err) != fault.NotFound {
			t.Fatalf("%q revoking alice's session: %v", p, err)
		}
		list, err := f.store.List(ctx, ListFilter{Principal: p})
		if err != nil || !slices.ContainsFunc(list, func(l Session) bool { return l.ID == s.ID }) {
			t.Fatalf("%q lists %+v (%v)", p, list, err)
		}
		for _, l := range list {
			if l.Principal != p {
				t.Fatalf("%q lists a session of %q", p, l.Principal)
			}
		}
		if _, err := f.store.Revoke(ctx, p, s.ID, "x"); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Lookup(ctx, s.ID)
		if err != nil || got.Principal != p {
			t.Fatalf("lookup %q's session: %+v, %v", p, got, err)
		}
	}
	wantCode(t, f.check(mine), "")
}
