package idempotency

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
	"user:a}:idem:x",
	"spiffe://example.org/agent/{deployer}",
}

func TestRecordKeys(t *testing.T) {
	ks := keyspace{prefix: DefaultPrefix}
	seen := map[string]string{}
	for _, p := range craftedPrincipals {
		tag := escapePrincipal(p)
		if strings.ContainsAny(tag, "{}") {
			t.Fatalf("%q: tag %q can be broken", p, tag)
		}
		for _, key := range []string{"k", "}{", "{x}", "secret-key-123"} {
			k := ks.record(p, tool, key)
			if got := hashTag(k); got != tag {
				t.Fatalf("%q: key %q hashes %q, want %q", p, k, got, tag)
			}
			if strings.Contains(k, "secret-key") {
				t.Fatalf("record key %q holds the raw key", k)
			}
			if other, dup := seen[k]; dup {
				t.Fatalf("%q and %q share the key %q", p+"/"+key, other, k)
			}
			seen[k] = p + "/" + key
		}
	}
	if got := ks.record(alice, tool, "k"); !strings.HasPrefix(got, "tg:{user:alice@example.com}:idem:domain_register:") || len(got) != len("tg:{user:alice@example.com}:idem:domain_register:")+64 {
		t.Fatalf("layout %q", got)
	}
}

func TestUpstreamKey(t *testing.T) {
	f := newFixture(t)
	other, err := New(f.rdb, Config{Secret: []byte(strings.Repeat("t", MinSecret))})
	if err != nil {
		t.Fatal(err)
	}
	const raw = "caller-secret-key"
	d := digest(t, argsA)
	a := f.started(alice, raw, d)
	b := f.started(bob, raw, d)
	up := f.store.UpstreamKey(a.Key, "stripe")

	if !strings.HasPrefix(up, "tg-") || len(up) != 67 || strings.Contains(up, raw) {
		t.Fatalf("upstream key %q", up)
	}
	for name, k := range map[string]string{
		"another principal, same raw key": f.store.UpstreamKey(b.Key, "stripe"),
		"another provider":                f.store.UpstreamKey(a.Key, "cloudflare"),
		"another request of the provider": f.store.UpstreamKey(a.Key, "stripe:customer"),
		"another deployment secret":       other.UpstreamKey(a.Key, "stripe"),
		"another tool":                    f.store.UpstreamKey(ScopedKey(alice, "domain_check", raw), "stripe"),
	} {
		if k == up {
			t.Fatalf("%s: same upstream key %q", name, k)
		}
	}
	// A retry after a crash sends the same key upstream, so the provider
	// deduplicates it.
	f.clock.Advance(DefaultInProgressTTL)
	retry := f.started(alice, raw, d)
	if got := f.store.UpstreamKey(retry.Key, "stripe"); got != up {
		t.Fatalf("retry sends %q upstream, first run sent %q", got, up)
	}
	// Mutating the caller's secret slice after New changes nothing.
	sec := []byte(strings.Repeat("u", MinSecret))
	st, _ := New(f.rdb, Config{Secret: sec})
	before := st.UpstreamKey(a.Key, "stripe")
	sec[0] = 'x'
	if st.UpstreamKey(a.Key, "stripe") != before {
		t.Fatal("the Store shares the caller's secret slice")
	}
}

func TestDeriveKey(t *testing.T) {
	d := digest(t, argsA)
	k := DeriveKey(alice, tool, d)
	if !validKey(k) || k != DeriveKey(alice, tool, d) {
		t.Fatalf("derived key %q unusable or unstable", k)
	}
	for name, other := range map[string]string{
		"other principal": DeriveKey(bob, tool, d),
		"other tool":      DeriveKey(alice, "domain_check", d),
		"other arguments": DeriveKey(alice, tool, digest(t, argsB)),
		"shifted fields":  DeriveKey(alice+tool[:1], tool[1:], d),
	} {
		if other == k {
			t.Fatalf("%s: same derived key", name)
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
