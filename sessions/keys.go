package sessions

import (
	"strings"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// keyspace builds every key the package uses. All keys of one principal share
// the hash tag {escaped principal}, so scripts touching them run on one slot.
type keyspace struct{ prefix string }

// base is "<prefix>:{<escaped principal>}:". The Lua scripts that walk the
// delegation tree receive it and append "sess:"/"kids:" themselves.
func (k keyspace) base(principal string) string {
	return k.prefix + ":{" + escapePrincipal(principal) + "}:"
}

func (k keyspace) sess(principal, sid string) string { return k.base(principal) + "sess:" + sid }
func (k keyspace) toks(principal, sid string) string { return k.base(principal) + "toks:" + sid }
func (k keyspace) kids(principal, sid string) string { return k.base(principal) + "kids:" + sid }
func (k keyspace) jti(principal, jti string) string  { return k.base(principal) + "jti:" + jti }
func (k keyspace) index(principal string) string     { return k.base(principal) + "idx" }
func (k keyspace) sid(sid string) string             { return k.prefix + ":sid:" + sid }
func (k keyspace) global() string                    { return k.prefix + ":sessidx" }

// escapePrincipal percent-encodes '%', '{' and '}'. Redis Cluster hashes the
// text between the first '{' and the next '}'; a principal such as
// "user:a}{b" would otherwise end the tag early, scatter one principal's keys
// over several slots or share a slot (and key names) with another principal.
// The encoding is injective, so distinct principals get distinct tags.
func escapePrincipal(p string) string { return rediskey.EscapePrincipal(p) }

// member names a child session in a kids set: "<principal>|<sid>". Session
// ids never contain '|', so the last '|' splits it.
func member(principal, sid string) string { return principal + "|" + sid }

func splitMember(m string) (principal, sid string, ok bool) {
	i := strings.LastIndexByte(m, '|')
	if i <= 0 || i == len(m)-1 {
		return "", "", false
	}
	principal, sid = m[:i], m[i+1:]
	return principal, sid, validPrincipal(principal) && validID(sid)
}

// Limits on identifiers. They are generous; their point is that nothing
// unbounded or unprintable reaches a key name.
const (
	maxPrincipal   = 1024
	maxID          = 128
	maxJTI         = 256
	maxReason      = 512
	maxDescription = 4096
	maxListItem    = 1024
)

// validPrincipal accepts printable UTF-8 of 1-1024 bytes.
func validPrincipal(p string) bool { return printable(p, maxPrincipal) }

// validID accepts session ids of [A-Za-z0-9._~-]{1,128}: no '|' (kids set
// members), ':' or braces (key names).
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	return true
}

// validJTI accepts printable UTF-8 of 1-256 bytes. It follows the escaped
// principal's closing '}', so its content cannot affect the hash tag.
func validJTI(j string) bool { return printable(j, maxJTI) }

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

// optionalText accepts "" or printable UTF-8 up to max bytes.
func optionalText(s string, max int) bool { return s == "" || printable(s, max) }

// validTokenHash accepts a lowercase hex SHA-256 (see HashToken).
func validTokenHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
