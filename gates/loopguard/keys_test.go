package loopguard

import (
	"strings"
	"testing"
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
	"user:a}:loop:all",
	"spiffe://example.org/agent/{deployer}",
}

func TestKeysOfOneCallShareASlot(t *testing.T) {
	ks := keyspace{prefix: DefaultPrefix}
	tags := map[string]string{}
	keys := map[string]string{}
	for _, p := range craftedPrincipals {
		tag := escapePrincipal(p)
		if strings.ContainsAny(tag, "{}") {
			t.Fatalf("%q: tag %q can be broken", p, tag)
		}
		if other, dup := tags[tag]; dup {
			t.Fatalf("%q and %q share the hash tag %q", p, other, tag)
		}
		tags[tag] = p
		c := Call{Principal: p, Session: "s1", Tool: "domain_check", Digest: digestA}
		for _, k := range []string{ks.cooldown(c), ks.session(p, c.Session), ks.principal(p), ks.refused(c)} {
			if got := hashTag(k); got != tag {
				t.Fatalf("%q: key %q hashes %q, want %q", p, k, got, tag)
			}
			if other, dup := keys[k]; dup {
				t.Fatalf("%q and %q share the key %q", p, other, k)
			}
			keys[k] = p
		}
	}
	c := call("s1")
	for got, want := range map[string]string{
		ks.session(alice, "s1"): "tg:{user:alice@example.com}:loop:sess:s1",
		ks.principal(alice):     "tg:{user:alice@example.com}:loop:all",
		ks.refused(c):           "tg:{user:alice@example.com}:loop:ref:domain_check:" + digestA,
		ks.cooldown(c):          "tg:{user:alice@example.com}:loop:cool:domain_check:" + digestA,
	} {
		if got != want {
			t.Fatalf("layout %q, want %q", got, want)
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
