package loopguard

import (
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// keyspace builds every key the package uses. All keys of one principal share
// the hash tag {escaped principal}, so one script's keys are on one slot.
type keyspace struct{ prefix string }

func (k keyspace) base(principal string) string {
	return k.prefix + ":{" + escapePrincipal(principal) + "}:loop:"
}

func (k keyspace) session(principal, sid string) string { return k.base(principal) + "sess:" + sid }
func (k keyspace) principal(principal string) string    { return k.base(principal) + "all" }
func (k keyspace) refused(c Call) string {
	return k.base(c.Principal) + "ref:" + c.Tool + ":" + c.Digest
}
func (k keyspace) cooldown(c Call) string {
	return k.base(c.Principal) + "cool:" + c.Tool + ":" + c.Digest
}

// escapePrincipal percent-encodes '%', '{' and '}'. Redis Cluster hashes the
// text between the first '{' and the next '}'; a principal such as
// "user:a}{b" would otherwise end the tag early, scatter one principal's keys
// over several slots or share a slot (and key names) with another principal.
// The encoding is injective, so distinct principals get distinct tags.
func escapePrincipal(p string) string { return rediskey.EscapePrincipal(p) }

// Limits on identifiers: nothing unbounded, unprintable or containing ':'
// or braces reaches a key name after the principal.
const (
	maxPrincipal = 1024
	maxName      = 128
)

func validPrincipal(p string) bool {
	if len(p) == 0 || len(p) > maxPrincipal || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// validToken accepts [A-Za-z0-9._~-]{1,128} (session ids, digests), plus
// '/' when slash is set (tool names).
func validToken(s string, slash bool) bool {
	if len(s) == 0 || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '~' || c == '-' || slash && c == '/') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
