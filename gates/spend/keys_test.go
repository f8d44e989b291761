package spend

import (
	"context"
	"strings"
	"testing"

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
	"user:a}:hold:x",
	"user:a}:cap:stripe",
	"spiffe://example.org/agent/{deployer}",
}

func TestPrincipalKeysCannotCollide(t *testing.T) {
	ks := keyspace{prefix: DefaultPrefix}
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
		mine := []string{ks.cap(p, Stripe, "2026-11"), ks.budget(p, "s1", Stripe), ks.hold(p, "h1"),
			ks.hold(p, "x:hold:y"), ks.open(p), ks.stale(p), ks.base(p) + "hold:z"}
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

func FuzzEscapePrincipal(f *testing.F) {
	for _, p := range craftedPrincipals {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		e := escapePrincipal(p)
		if strings.ContainsAny(e, "{}") {
			t.Fatalf("%q escapes to %q, which contains a brace", p, e)
		}
		if u := strings.NewReplacer("%25", "%", "%7B", "{", "%7D", "}").Replace(e); u != p {
			t.Fatalf("%q escapes to %q, which unescapes to %q", p, e, u)
		}
	})
}

// Hold ids and session ids sit inside key names: one principal's hold id
// can never name another principal's keys or another of its own.
func TestCraftedIDsStayInTheirKeys(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	f.mustHold("h1", usd(100))
	for _, p := range craftedPrincipals[1:] {
		if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "h1", Principal: p, Provider: Stripe, Amount: usd(10000)}); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		wantCode(t, f.ledger.Commit(ctx, p, "h1", usd(10000)), "")
	}
	f.wantMoney(0, 100)
	// A hold id that looks like a key suffix is just an id.
	f.mustHold("x:cap:stripe:2026-11", usd(100))
	f.wantMoney(0, 200)
	_, err := f.hold("h1}", usd(1))
	wantCode(t, err, fault.InvalidArgument)
}
