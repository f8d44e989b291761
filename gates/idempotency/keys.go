package idempotency

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// Domain separators: a hash made for one purpose never equals one made for
// another.
const (
	sepDerive   = "tollgate/idempotency/derive/v1"
	sepScope    = "tollgate/idempotency/scope/v1"
	sepUpstream = "tollgate/idempotency/upstream/v1"
)

// DeriveKey returns the key of a call that came without an idempotency_key:
// "derived-" and the hex SHA-256 of principal, tool and the digest of the
// arguments (see Digest). The same call within the record's lifetime gets
// the same key, hence the stored result.
func DeriveKey(principal, tool, digest string) string {
	return "derived-" + sum(sha256.New(), sepDerive, principal, tool, digest)
}

// ScopedKey names the key of principal and tool: the hex SHA-256 of all
// three. It is Outcome.Key, the input to Store.UpstreamKey, so that the same
// raw key under two principals or tools never becomes the same upstream key.
func ScopedKey(principal, tool, key string) string {
	return sum(sha256.New(), sepScope, principal, tool, key)
}

// UpstreamKey returns the idempotency key to send provider for the scoped
// key ourKey (Outcome.Key): "tg-" and the hex HMAC-SHA256 of both under the
// deployment's Config.Secret. It is deterministic, so a retried call sends
// the same key upstream and the provider deduplicates it (stripe-go would
// invent a random one); it reveals nothing of the caller's key. provider
// names the upstream request ("stripe", "stripe:customer"): a tool that
// makes two requests needs two names. 67 characters, within Stripe's 255.
func (s *Store) UpstreamKey(ourKey, provider string) string {
	return "tg-" + sum(hmac.New(sha256.New, s.cfg.Secret), sepUpstream, provider, ourKey)
}

// sum hashes the length-prefixed parts, so that ("ab","c") ≠ ("a","bc").
func sum(h hash.Hash, parts ...string) string {
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// keyspace builds the package's Redis keys. All keys of one principal share
// the hash tag {escaped principal}.
type keyspace struct{ prefix string }

// record is "<prefix>:{P}:idem:<tool>:<sha256(key) hex>". The raw key is
// never stored: it may be something the caller considers secret.
func (k keyspace) record(principal, tool, key string) string {
	h := sha256.Sum256([]byte(key))
	return k.prefix + ":{" + escapePrincipal(principal) + "}:idem:" + tool + ":" + hex.EncodeToString(h[:])
}

// escapePrincipal percent-encodes '%', '{' and '}'. Redis Cluster hashes the
// text between the first '{' and the next '}'; a principal such as
// "user:a}{b" would otherwise end the tag early, scatter one principal's keys
// over several slots or share a slot (and key names) with another principal.
// The encoding is injective, so distinct principals get distinct tags.
func escapePrincipal(p string) string { return rediskey.EscapePrincipal(p) }

// Limits on identifiers. Their point is that nothing unbounded or
// unprintable reaches a key name.
const (
	maxPrincipal = 1024
	maxTool      = 128
	// maxKey is Stripe's limit for an idempotency key, so a caller's key
	// that passes here would also have passed upstream.
	maxKey = 255
	// MaxResult bounds a stored result (256 KiB).
	MaxResult = 256 << 10
)

func validPrincipal(p string) bool { return printable(p, maxPrincipal) }

func validKey(k string) bool { return printable(k, maxKey) }

// validTool accepts [A-Za-z0-9_./-]{1,128}: no ':' or braces in key names.
func validTool(t string) bool {
	if len(t) == 0 || len(t) > maxTool {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isAlnum(c) || c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

// validDigest accepts a lowercase hex SHA-256 (see Digest).
func validDigest(d string) bool {
	if len(d) != 64 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validFence accepts what newFence makes: 32 lowercase hex characters.
func validFence(f string) bool { return len(f) == 32 && validDigest(f+f) }

func printable(s string, max int) bool {
	if len(s) == 0 || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
