package spend

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Field names of the hold hash. They are readable on purpose: operators may
// HGETALL a hold while reconciling.
const (
	fID          = "id"
	fPrincipal   = "principal"
	fProvider    = "provider"
	fAmount      = "amount"
	fCurrency    = "currency"
	fMonth       = "month"
	fState       = "state"
	fCreated     = "created_ms"
	fExpires     = "expires_ms"
	fSettled     = "settled_ms"
	fReconciled  = "reconciled_ms"
	fActual      = "actual"
	fReason      = "reason"
	fBudgets     = "budgets"    // session ids, innermost first, comma-separated
	fBudgetMax   = "budget_max" // their maxima in minor units, same order
	fTool        = "tool"
	fDescription = "description"
)

// decodeHold turns a hold hash into a Hold. It refuses records it does not
// fully understand rather than guess at money.
func decodeHold(h map[string]string) (Hold, error) {
	cur := h[fCurrency]
	if _, ok := money.Exponent(cur); !ok {
		return Hold{}, fmt.Errorf("hold %q: currency %q", h[fID], cur)
	}
	out := Hold{
		ID:          h[fID],
		Principal:   h[fPrincipal],
		Provider:    h[fProvider],
		Month:       h[fMonth],
		State:       State(h[fState]),
		Tool:        h[fTool],
		Description: h[fDescription],
		Reason:      h[fReason],
	}
	switch out.State {
	case StateHeld, StateCommitted, StateReleased, StateExpired:
	default:
		return Hold{}, fmt.Errorf("hold %q: unknown state %q", out.ID, out.State)
	}
	var err error
	if out.Amount, err = minor(h[fAmount], cur); err != nil {
		return Hold{}, fmt.Errorf("hold %q: amount: %w", out.ID, err)
	}
	if a := h[fActual]; a != "" {
		if out.Actual, err = minor(a, cur); err != nil {
			return Hold{}, fmt.Errorf("hold %q: actual: %w", out.ID, err)
		}
	}
	for _, t := range []struct {
		field    string
		dst      *time.Time
		optional bool
	}{
		{fCreated, &out.Created, false},
		{fExpires, &out.Expires, false},
		{fSettled, &out.Settled, true},
		{fReconciled, &out.Reconciled, true},
	} {
		v := h[t.field]
		if v == "" && t.optional {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Hold{}, fmt.Errorf("hold %q: %s: %w", out.ID, t.field, err)
		}
		*t.dst = time.UnixMilli(n).UTC()
	}
	if sids := h[fBudgets]; sids != "" {
		ids := strings.Split(sids, ",")
		maxes := strings.Split(h[fBudgetMax], ",")
		if len(maxes) != len(ids) {
			return Hold{}, fmt.Errorf("hold %q: %d budgets, %d maxima", out.ID, len(ids), len(maxes))
		}
		for i, sid := range ids {
			m, err := minor(maxes[i], cur)
			if err != nil {
				return Hold{}, fmt.Errorf("hold %q: budget %s: %w", out.ID, sid, err)
			}
			out.Budgets = append(out.Budgets, Budget{Session: sid, Max: m})
		}
	}
	return out, nil
}

// minor parses a decimal count of minor units.
func minor(v, currency string) (money.Money, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return money.Money{}, err
	}
	return money.Money{Minor: n, Currency: currency}, nil
}

// reply is a script's answer: a code, then values.
type reply struct {
	code int64
	vals []any
}

func parseReply(v any) (reply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return reply{}, fmt.Errorf("script replied %T %v", v, v)
	}
	code, ok := arr[0].(int64)
	if !ok {
		return reply{}, fmt.Errorf("script replied code %T %v", arr[0], arr[0])
	}
	return reply{code: code, vals: arr}, nil
}

// str returns value i as a string, "" when it is missing or not a string.
func (r reply) str(i int) string {
	if i >= len(r.vals) {
		return ""
	}
	s, _ := r.vals[i].(string)
	return s
}

// int returns value i as an integer; scripts send integers or strings.
func (r reply) int(i int) (int64, error) {
	if i >= len(r.vals) {
		return 0, fmt.Errorf("reply has no value %d", i)
	}
	switch v := r.vals[i].(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	default:
		return 0, fmt.Errorf("reply value %d is %T", i, v)
	}
}

// pair returns values i and i+1 as amounts: spent and held.
func (r reply) pair(i int, currency string) (spent, held money.Money, err error) {
	s, err := r.int(i)
	if err != nil {
		return money.Money{}, money.Money{}, err
	}
	h, err := r.int(i + 1)
	if err != nil {
		return money.Money{}, money.Money{}, err
	}
	return money.Money{Minor: s, Currency: currency}, money.Money{Minor: h, Currency: currency}, nil
}

// record decodes value i, a flat HGETALL reply, as a Hold.
func (r reply) record(i int) (Hold, error) {
	if i >= len(r.vals) {
		return Hold{}, fmt.Errorf("reply has no record")
	}
	return decodeFlat(r.vals[i])
}

func decodeFlat(v any) (Hold, error) {
	flat, ok := v.([]any)
	if !ok || len(flat)%2 != 0 || len(flat) == 0 {
		return Hold{}, fmt.Errorf("record is %T of %v", v, v)
	}
	h := make(map[string]string, len(flat)/2)
	for j := 0; j < len(flat); j += 2 {
		k, ok1 := flat[j].(string)
		val, ok2 := flat[j+1].(string)
		if !ok1 || !ok2 {
			return Hold{}, fmt.Errorf("record field %d is %T=%T", j/2, flat[j], flat[j+1])
		}
		h[k] = val
	}
	return decodeHold(h)
}
