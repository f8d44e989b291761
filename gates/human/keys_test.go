package human

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
	"user:a}:approval:x",
	"user:a}:consents",
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
		for _, k := range []string{ks.used(p, "0123"), ks.approval(p, "a1"), ks.approvals(p), ks.consents(p),
			ks.base(p) + "approval:x"} {
			// One principal, one slot: every script's keys hash alike.
			if got := hashTag(k); got != tag {
				t.Fatalf("%q: key %q hashes %q, want %q", p, k, got, tag)
			}
			if other, dup := keys[k]; dup && other != p {
				t.Fatalf("%q and %q share the key %q", p, other, k)
			}
			keys[k] = p
		}
	}
	// The untagged keys can never be mistaken for a principal's.
	for _, k := range []string{ks.sealKey(), ks.owner("a1")} {
		if strings.ContainsAny(k, "{}") {
			t.Fatalf("%q has a hash tag", k)
		}
	}
	if ks.owner("a1") != "tg:approval:a1" || ks.sealKey() != "tg:gates:sealkey" {
		t.Fatalf("keys %q %q", ks.owner("a1"), ks.sealKey())
	}
}
