package human

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Status is where an approval is in its life.
type Status string

const (
	// StatusPending: waiting for the human.
	StatusPending Status = "pending"
	// StatusApproved: the human said yes; the agent may use it once.
	StatusApproved Status = "approved"
	// StatusDenied: the human said no.
	StatusDenied Status = "denied"
	// StatusExpired: pending or approved past its expiry; it can no longer
	// be decided or used. Never stored: it is judged by the clock when read.
	StatusExpired Status = "expired"
	// StatusUsed: approved and used once by the call it was asked for.
	StatusUsed Status = "used"
)

// Approval is a gate answered outside the MCP session: on tollgate's
// approvals page (/approvals/{id}), with `tollgate approvals approve ID`, or
// at the end of a URL-mode flow. The agent retries its call with the id;
// the id alone is not authority (see Approvals).
type Approval struct {
	ID      string  `json:"id"`
	Binding Binding `json:"binding"`
	Kind    Kind    `json:"kind"`
	// Summary is exactly what the human is shown.
	Summary string `json:"summary"`
	// Fields are the facts shown with it, e.g. item, price, provider,
	// month_to_date for a purchase. Names are [a-z0-9_]{1,64}.
	Fields    map[string]string `json:"fields,omitempty"`
	Status    Status            `json:"status"`
	Created   time.Time         `json:"created"`
	Expires   time.Time         `json:"expires"`
	Decided   time.Time         `json:"decided,omitzero"`
	DecidedBy string            `json:"decided_by,omitempty"`
	// Used is when the agent's call used the approval.
	Used time.Time `json:"used,omitzero"`
}

// Field names of the approval hash. They are readable on purpose: an
// operator may HGETALL an approval.
const (
	fID        = "id"
	fPrincipal = "principal"
	fSession   = "session"
	fTool      = "tool"
	fArgs      = "args_digest"
	fKind      = "kind"
	fSummary   = "summary"
	fFields    = "fields" // JSON object
	fStatus    = "status"
	fCreated   = "created_ms"
	fExpires   = "expires_ms"
	fDecided   = "decided_ms"
	fDecidedBy = "decided_by"
	fUsed      = "used_ms"
)

// validate checks what Create takes from the caller.
func (a Approval) validate() error {
	if err := a.Binding.validate(); err != nil {
		return err
	}
	if !a.Kind.Valid() {
		return invalid("unknown gate kind %q; nothing was charged or changed.", a.Kind)
	}
	if a.Summary == "" || !optionalText(a.Summary, maxSummary) {
		return invalid("an approval's summary must be printable text of 1-%d bytes; nothing was charged or changed.", maxSummary)
	}
	if len(a.Fields) > maxFields {
		return invalid("an approval shows at most %d fields; nothing was charged or changed.", maxFields)
	}
	for _, n := range sortedNames(a.Fields) {
		if !validFieldName(n) || !optionalText(a.Fields[n], maxFieldValue) {
			return invalid("approval field %q: names are [a-z0-9_]{1,%d} and values printable text of at most %d bytes; nothing was charged or changed.",
				n, maxFieldName, maxFieldValue)
		}
	}
	return nil
}

// encode returns the record as field/value pairs for createLua.
func (a Approval) encode() ([]any, error) {
	fields := "{}"
	if len(a.Fields) > 0 {
		b, err := json.Marshal(a.Fields)
		if err != nil {
			return nil, err
		}
		fields = string(b)
	}
	return []any{
		fID, a.ID,
		fPrincipal, a.Binding.Principal,
		fSession, a.Binding.Session,
		fTool, a.Binding.Tool,
		fArgs, a.Binding.ArgsDigest,
		fKind, string(a.Kind),
		fSummary, a.Summary,
		fFields, fields,
		fStatus, string(a.Status),
		fCreated, ms(a.Created),
		fExpires, ms(a.Expires),
	}, nil
}

// decodeApproval turns an approval hash into an Approval, with the status
// judged at now (pending or approved past expiry reads as expired). It
// refuses records it does not fully understand.
func decodeApproval(h map[string]string, now time.Time) (Approval, error) {
	a := Approval{
		ID: h[fID],
		Binding: Binding{Principal: h[fPrincipal], Session: h[fSession], Tool: h[fTool],
			ArgsDigest: h[fArgs]},
		Kind:      Kind(h[fKind]),
		Summary:   h[fSummary],
		Status:    Status(h[fStatus]),
		DecidedBy: h[fDecidedBy],
	}
	if !validID(a.ID) || !a.Kind.Valid() {
		return Approval{}, fmt.Errorf("approval %q: id or kind %q", a.ID, a.Kind)
	}
	switch a.Status {
	case StatusPending, StatusApproved, StatusDenied, StatusUsed:
	default:
		return Approval{}, fmt.Errorf("approval %q: unknown status %q", a.ID, a.Status)
	}
	if f := h[fFields]; f != "" && f != "{}" {
		if err := json.Unmarshal([]byte(f), &a.Fields); err != nil {
			return Approval{}, fmt.Errorf("approval %q: fields: %w", a.ID, err)
		}
	}
	for _, t := range []struct {
		field    string
		dst      *time.Time
		optional bool
	}{
		{fCreated, &a.Created, false},
		{fExpires, &a.Expires, false},
		{fDecided, &a.Decided, true},
		{fUsed, &a.Used, true},
	} {
		v := h[t.field]
		if v == "" && t.optional {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Approval{}, fmt.Errorf("approval %q: %s: %w", a.ID, t.field, err)
		}
		*t.dst = time.UnixMilli(n).UTC()
	}
	if (a.Status == StatusPending || a.Status == StatusApproved) && !now.Before(a.Expires) {
		a.Status = StatusExpired
	}
	return a, nil
}

// recordOf reads a record (a flat [field, value, ...] array) from a reply.
func recordOf(v any) (map[string]string, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 || len(arr) == 0 {
		return nil, fmt.Errorf("record is %T of %v", v, v)
	}
	h := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, ok1 := arr[i].(string)
		val, ok2 := arr[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("record field %d is not a string", i/2)
		}
		h[k] = val
	}
	return h, nil
}

// replyOf splits a script's reply into its code and values.
func replyOf(v any) (int64, []any, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return 0, nil, fmt.Errorf("script replied %T %v", v, v)
	}
	code, ok := arr[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("script replied code %T %v", arr[0], arr[0])
	}
	return code, arr[1:], nil
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
