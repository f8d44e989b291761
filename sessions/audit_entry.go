package sessions

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// recordVersion is the version of the canonical form; it is hashed, so a
// future form can never be mistaken for this one.
const recordVersion = 1

// record is the canonical form of an Entry: every field but ID and Hash, in
// this order, empty ones left out, the time in RFC 3339 UTC with
// nanoseconds, the amount in minor units. Its JSON is what is hashed and
// what the stream stores, so it must never change meaning; a new form gets
// a new version.
type record struct {
	V                 int               `json:"v"`
	Seq               int64             `json:"seq"`
	Time              string            `json:"time"`
	Event             string            `json:"event"`
	Principal         string            `json:"principal,omitempty"`
	Actors            []string          `json:"actors,omitempty"`
	ClientID          string            `json:"client_id,omitempty"`
	Session           string            `json:"session,omitempty"`
	ParentSession     string            `json:"parent_session,omitempty"`
	JTI               string            `json:"jti,omitempty"`
	Tool              string            `json:"tool,omitempty"`
	ArgsDigest        string            `json:"args_digest,omitempty"`
	Decision          string            `json:"decision,omitempty"`
	Code              string            `json:"code,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	PolicyIDs         []string          `json:"policy_ids,omitempty"`
	Amount            *amount           `json:"amount,omitempty"`
	Provider          string            `json:"provider,omitempty"`
	ProviderRequestID string            `json:"provider_request_id,omitempty"`
	Detail            map[string]string `json:"detail,omitempty"` // keys sorted by encoding/json
	// TraceID came later: left out when empty, so entries written before
	// it existed keep their canonical form and their hashes.
	TraceID string `json:"trace_id,omitempty"`
	Nonce   string `json:"nonce"`
	Prev    string `json:"prev"`
}

// amount is money in the canonical form, independent of money.Money's own
// JSON (which may grow display fields).
type amount struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// canonical returns the canonical JSON of e (without ID and Hash).
func canonical(e Entry) ([]byte, error) {
	r := record{
		V: recordVersion, Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Event: e.Event,
		Principal: e.Principal, Actors: e.Actors, ClientID: e.ClientID,
		Session: e.Session, ParentSession: e.ParentSession, JTI: e.JTI, Tool: e.Tool,
		ArgsDigest: e.ArgsDigest, Decision: e.Decision, Code: e.Code, Reason: e.Reason,
		PolicyIDs: e.PolicyIDs, Provider: e.Provider, ProviderRequestID: e.ProviderRequestID,
		Detail: e.Detail, TraceID: e.TraceID, Nonce: e.Nonce, Prev: e.Prev,
	}
	if e.Amount != nil {
		r.Amount = &amount{Minor: e.Amount.Minor, Currency: e.Amount.Currency}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// parseRecord reads a stored canonical JSON into an Entry (ID and Hash
// left empty). It is strict: unknown fields and other versions are refused.
func parseRecord(b []byte) (Entry, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Entry{}, err
	}
	if dec.More() {
		return Entry{}, errors.New("trailing data after the entry")
	}
	if r.V != recordVersion {
		return Entry{}, fmt.Errorf("unknown entry version %d", r.V)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("time: %w", err)
	}
	e := Entry{
		Seq: r.Seq, Time: t.UTC(), Event: r.Event,
		Principal: r.Principal, Actors: r.Actors, ClientID: r.ClientID,
		Session: r.Session, ParentSession: r.ParentSession, JTI: r.JTI, Tool: r.Tool,
		ArgsDigest: r.ArgsDigest, Decision: r.Decision, Code: r.Code, Reason: r.Reason,
		PolicyIDs: r.PolicyIDs, Provider: r.Provider, ProviderRequestID: r.ProviderRequestID,
		Detail: r.Detail, TraceID: r.TraceID, Nonce: r.Nonce, Prev: r.Prev,
	}
	if r.Amount != nil {
		e.Amount = &money.Money{Minor: r.Amount.Minor, Currency: r.Amount.Currency}
	}
	return e, nil
}

// chainHash is hex(SHA-256(prev || body)).
func chainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// DigestArgs returns "sha256:<hex>" of a tool's canonical arguments, the
// form Entry.ArgsDigest records instead of the arguments themselves.
func DigestArgs(canonicalArgs []byte) string {
	sum := sha256.Sum256(canonicalArgs)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Limits on an entry's fields. The entry is for identifiers and codes;
// anything longer belongs in a digest.
const (
	maxAuditText   = 1024
	maxAuditReason = 2048
	maxAuditList   = 32
	maxAuditDetail = 32
	maxAuditToken  = 64
)

// prepareEntry validates e and returns it normalised for hashing: time set
// and in UTC, empty lists and maps nil, currency lower case, nonce drawn.
// The fields Append fills are cleared.
func prepareEntry(e Entry, now time.Time) (Entry, error) {
	e.ID, e.Seq, e.Prev, e.Hash = "", 0, "", ""
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if !auditToken(e.Event, true) {
		return Entry{}, invalid("the audit event must be 1-%d of [a-z0-9_.]; nothing was recorded.", maxAuditToken)
	}
	switch e.Decision {
	case "", DecisionAllow, DecisionDeny, DecisionOK, DecisionError:
	default:
		return Entry{}, invalid("the audit decision must be allow, deny, ok, error or empty; nothing was recorded.")
	}
	if !auditToken(e.Code, false) {
		return Entry{}, invalid("the audit code must be at most %d of [a-z0-9_.]; nothing was recorded.", maxAuditToken)
	}
	for _, f := range [...]struct{ name, v string }{
		{"principal", e.Principal}, {"client_id", e.ClientID}, {"session", e.Session},
		{"parent_session", e.ParentSession}, {"jti", e.JTI}, {"tool", e.Tool},
		{"provider", e.Provider}, {"provider_request_id", e.ProviderRequestID},
	} {
		if !optionalText(f.v, maxAuditText) {
			return Entry{}, invalid("the audit field %s must be at most %d bytes of printable UTF-8; nothing was recorded.", f.name, maxAuditText)
		}
	}
	if !optionalText(e.Reason, maxAuditReason) {
		return Entry{}, invalid("the audit reason must be at most %d bytes of printable UTF-8; nothing was recorded.", maxAuditReason)
	}
	if e.ArgsDigest != "" && !validDigest(e.ArgsDigest) {
		return Entry{}, invalid("the audit args_digest must be \"<alg>:<lowercase hex>\" (see DigestArgs), never the arguments; nothing was recorded.")
	}
	for _, f := range [...]struct {
		name string
		list []string
	}{{"actors", e.Actors}, {"policy_ids", e.PolicyIDs}} {
		if len(f.list) > maxAuditList {
			return Entry{}, invalid("the audit field %s has more than %d items; nothing was recorded.", f.name, maxAuditList)
		}
		for _, v := range f.list {
			if !printable(v, maxAuditText) {
				return Entry{}, invalid("each of the audit field %s must be 1-%d bytes of printable UTF-8; nothing was recorded.", f.name, maxAuditText)
			}
		}
	}
	e.Actors = cloneList(e.Actors)
	e.PolicyIDs = cloneList(e.PolicyIDs)
	if len(e.Detail) > maxAuditDetail {
		return Entry{}, invalid("the audit detail has more than %d keys; nothing was recorded.", maxAuditDetail)
	}
	for k, v := range e.Detail {
		if !auditToken(k, true) || !optionalText(v, maxAuditText) {
			return Entry{}, invalid("audit detail keys must be 1-%d of [a-z0-9_.] and values at most %d bytes of printable UTF-8; nothing was recorded.", maxAuditToken, maxAuditText)
		}
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	} else {
		e.Detail = maps.Clone(e.Detail)
	}
	if e.Amount != nil {
		if _, ok := money.Exponent(e.Amount.Currency); !ok {
			return Entry{}, invalid("the audit amount's currency %q is not supported; nothing was recorded.", e.Amount.Currency)
		}
		m := money.Money{Minor: e.Amount.Minor, Currency: strings.ToLower(e.Amount.Currency)}
		e.Amount = &m
	}
	switch {
	case e.Nonce == "":
		e.Nonce = newNonce()
	case !validNonce(e.Nonce):
		return Entry{}, invalid("the audit nonce must be 8-64 of [A-Za-z0-9_-]; nothing was recorded.")
	}
	return e, nil
}

// cloneList copies a list so that the caller's later edits cannot reach
// the returned entry; an empty list becomes nil.
func cloneList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// auditToken accepts [a-z0-9_.] up to maxAuditToken bytes, and "" unless
// required.
func auditToken(s string, required bool) bool {
	if s == "" {
		return !required
	}
	if len(s) > maxAuditToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validDigest accepts "<alg>:<hex>": alg 1-16 of [a-z0-9], hex 32-128
// lowercase digits. The shape leaves no room for raw arguments.
func validDigest(d string) bool {
	alg, h, ok := strings.Cut(d, ":")
	if !ok || len(alg) == 0 || len(alg) > 16 || len(h) < 32 || len(h) > 128 {
		return false
	}
	for i := 0; i < len(alg); i++ {
		if c := alg[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validNonce(n string) bool {
	if len(n) < 8 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(isAlnum(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newNonce returns 128 random bits as 32 hex digits.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
