package spend

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// keyspace builds every key the package uses. All keys of one principal share
// the hash tag {escaped principal}, so scripts touching them run on one slot.
type keyspace struct{ prefix string }

// base is "<prefix>:{<escaped principal>}:". The scripts receive it and
// append "hold:", "cap:" and "budget:" themselves for the keys of other
// holds, months and budgets, which stay on the same slot.
func (k keyspace) base(principal string) string {
	return k.prefix + ":{" + escapePrincipal(principal) + "}:"
}

func (k keyspace) cap(principal, provider, month string) string {
	return k.base(principal) + "cap:" + provider + ":" + month
}

func (k keyspace) budget(principal, sid, provider string) string {
	return k.base(principal) + "budget:" + sid + ":" + provider
}

func (k keyspace) hold(principal, id string) string { return k.base(principal) + "hold:" + id }
func (k keyspace) open(principal string) string     { return k.base(principal) + "holds:open" }
func (k keyspace) stale(principal string) string    { return k.base(principal) + "holds:stale" }
func (k keyspace) principals() string               { return k.prefix + ":spend:principals" }

// escapePrincipal percent-encodes '%', '{' and '}', exactly as package
// sessions does. Redis Cluster hashes the text between the first '{' and the
// next '}'; a principal such as "user:a}{b" would otherwise end the tag
// early, scatter one principal's keys over several slots or share key names
// with another principal. The encoding is injective.
func escapePrincipal(p string) string { return rediskey.EscapePrincipal(p) }

// month is the ledger's name of the UTC calendar month of t: "2026-11".
func month(t time.Time) string { return t.UTC().Format("2006-01") }

// Limits on identifiers and free text. Their point is that nothing
// unbounded or unprintable reaches a key name or a record.
const (
	maxPrincipal   = 1024
	maxID          = 128
	maxBudgets     = 16
	maxTool        = 128
	maxDescription = 1024
	maxReason      = 512
)

// validPrincipal accepts printable UTF-8 of 1-1024 bytes.
func validPrincipal(p string) bool { return printable(p, maxPrincipal) }

// validHoldID accepts [A-Za-z0-9._~:-]{1,128}.
func validHoldID(id string) bool { return idChars(id, true) }

// validSessionID accepts session ids as package sessions makes them,
// [A-Za-z0-9._~-]{1,128}: no ',' (the record joins them with commas) and no
// ':' (they sit inside budget key names).
func validSessionID(id string) bool { return idChars(id, false) }

func idChars(id string, colon bool) bool {
	if len(id) == 0 || len(id) > maxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '~' || c == '-' || colon && c == ':') {
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
// tabs are allowed.
func optionalText(s string, max int) bool {
	if s == "" {
		return true
	}
	return printable(strings.NewReplacer("\n", " ", "\t", " ").Replace(s), max)
}
