// Package rediskey owns the layout of tollgate's Redis key space: the
// registry of every key family with its one owning store (Families), and
// the escaping of the untrusted strings that go into keys. It is a leaf: it
// imports no tollgate package, and it never touches Redis.
package rediskey

import "strings"

// EscapePrincipal makes a principal safe inside a Redis Cluster hash tag
// ({…}): '%', '{' and '}' are percent-encoded, so no principal can close
// the tag early or collide with another's keys.
func EscapePrincipal(p string) string {
	if !strings.ContainsAny(p, "%{}") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%':
			b.WriteString("%25")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
