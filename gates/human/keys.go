package human

import (
	"strings"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// keyspace builds every key the package uses. All keys of one principal
// share the hash tag {escaped principal}, so each script runs on one slot.
type keyspace struct{ prefix string }

// base is "<prefix>:{<escaped principal>}:".
func (k keyspace) base(principal string) string {
	return k.prefix + ":{" + escapePrincipal(principal) + "}:"
}

// sealKey holds the AEAD master key every replica shares.
func (k keyspace) sealKey() string { return k.prefix + ":gates:sealkey" }

// used marks a sealed state id as spent.
func (k keyspace) used(principal, stateID string) string {
	return k.base(principal) + "gate:used:" + stateID
}

func (k keyspace) approval(principal, id string) string {
	return k.base(principal) + "approval:" + id
}

func (k keyspace) approvals(principal string) string { return k.base(principal) + "approvals" }

// owner maps an approval id to its principal, for the approvals page, which
// has only the id from its URL. It has no hash tag and is written by a
// plain command next to the record's script.
func (k keyspace) owner(id string) string { return k.prefix + ":approval:" + id }

func (k keyspace) consents(principal string) string { return k.base(principal) + "consents" }

// escapePrincipal percent-encodes '%', '{' and '}', exactly as packages
// sessions and spend do. Redis Cluster hashes the text between the first
// '{' and the next '}'; a principal such as "user:a}{b" would otherwise end
// the tag early, scatter one principal's keys over several slots or share
// key names with another principal. The encoding is injective.
func escapePrincipal(p string) string { return rediskey.EscapePrincipal(p) }

// Limits on identifiers and free text. Their point is that nothing
// unbounded or unprintable reaches a key name, a record or a sealed state.
const (
	maxPrincipal  = 1024
	maxID         = 128
	maxGateID     = 64
	maxTool       = 128
	maxDigest     = 128
	maxSummary    = 4096
	maxGates      = 8
	maxFields     = 32
	maxFieldName  = 64
	maxFieldValue = 1024
	maxBy         = 256
	maxProvider   = 64
	maxVersion    = 128
)

// validPrincipal accepts printable UTF-8 of 1-1024 bytes.
func validPrincipal(p string) bool { return printable(p, maxPrincipal) }

// validID accepts session, approval and elicitation ids:
// [A-Za-z0-9._~-]{1,128}, no ':' or braces (they sit inside key names).
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

// validToken accepts printable ASCII without spaces, 1-max bytes: tool
// names and digests.
func validToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validProvider accepts [a-z0-9._-]{1,64}: "stripe", "cloudflare".
func validProvider(p string) bool {
	if len(p) == 0 || len(p) > maxProvider {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validFieldName accepts [a-z0-9_]{1,64}: "price", "month_to_date".
func validFieldName(n string) bool {
	if len(n) == 0 || len(n) > maxFieldName {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

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

// optionalText accepts "" or printable UTF-8 up to max bytes; newlines and
// tabs are allowed (summaries are shown as text).
func optionalText(s string, max int) bool {
	if s == "" {
		return true
	}
	if len(s) > max {
		return false
	}
	return printable(strings.NewReplacer("\n", " ", "\t", " ").Replace(s), max)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
