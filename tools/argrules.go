package tools

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// ArgRule is what a Go struct tag cannot say about one argument: its JSON
// type when the Go field keeps the exact text (json.Number is an integer
// on the wire), and its bounds. One rule is the one source of the
// published schema's keywords and of the check checkArgs makes before
// the pipeline, so the two cannot drift.
type ArgRule struct {
	Integer           bool // "type": "integer"
	Min, Max          *int64
	MinLength, MaxLen int      // strings, in characters; 0: none
	Enum              []string // the only values a string may take
	FoldCase          bool     // Enum matches case-insensitively (the handler normalises)
	MinItems          int      // arrays; 0: none
}

func bound(n int64) *int64 { return &n }

// intRule is a whole number from min to max.
func intRule(min, max int64) ArgRule { return ArgRule{Integer: true, Min: bound(min), Max: bound(max)} }

// idempotencyKeyRule is every tool's idempotency_key: 8 to 255 characters,
// as the catalog documents (short keys collide across retries of
// different calls).
var idempotencyKeyRule = ArgRule{MinLength: 8, MaxLen: 255}

// keywords are the schema keywords of r.
func (r ArgRule) keywords() map[string]any {
	k := map[string]any{}
	if r.Integer {
		k["type"] = "integer"
	}
	if r.Min != nil {
		k["minimum"] = *r.Min
	}
	if r.Max != nil {
		k["maximum"] = *r.Max
	}
	if r.MinLength > 0 {
		k["minLength"] = r.MinLength
	}
	if r.MaxLen > 0 {
		k["maxLength"] = r.MaxLen
	}
	if len(r.Enum) > 0 {
		k["enum"] = r.Enum
	}
	if r.MinItems > 0 {
		k["minItems"] = r.MinItems
	}
	return k
}

// applyArgRules writes rules into the input schema's properties. A rule
// for an argument the schema lacks is a programming error.
func applyArgRules(def *mcp.Tool, rules map[string]ArgRule) error {
	if len(rules) == 0 {
		return nil
	}
	var schema map[string]any
	if err := json.Unmarshal(def.RawInputSchema, &schema); err != nil {
		return fmt.Errorf("tools: %s input schema: %w", def.Name, err)
	}
	props, _ := schema["properties"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		p, ok := props[name].(map[string]any)
		if !ok {
			return fmt.Errorf("tools: %s has a rule for %q, which is not one of its arguments", def.Name, name)
		}
		maps.Copy(p, rules[name].keywords())
	}
	out, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	def.RawInputSchema = out
	return nil
}

// check refuses a value the rule does not allow (absent is allowed:
// required arguments are the handler's to demand).
func (r ArgRule) check(name string, v any) error {
	bad := func(what string) error {
		return fault.Newf(fault.InvalidArgument, "%s must be %s; nothing was done or charged", name, what)
	}
	if r.Integer || r.Min != nil || r.Max != nil {
		n, ok := wholeNumber(v)
		if !ok {
			return bad("a whole number" + r.rangeText())
		}
		if (r.Min != nil && n < *r.Min) || (r.Max != nil && n > *r.Max) {
			return bad("a whole number" + r.rangeText() + fmt.Sprintf(", got %d", n))
		}
	}
	if len(r.Enum) > 0 {
		s, ok := v.(string)
		if ok && r.FoldCase {
			ok = slices.ContainsFunc(r.Enum, func(e string) bool { return strings.EqualFold(e, s) })
		} else if ok {
			ok = slices.Contains(r.Enum, s)
		}
		if !ok {
			return bad("one of " + strings.Join(r.Enum, ", "))
		}
	}
	if r.MinItems > 0 {
		if xs, ok := v.([]any); !ok || len(xs) < r.MinItems {
			return bad(fmt.Sprintf("a list of at least %d", r.MinItems))
		}
	}
	if r.MinLength > 0 || r.MaxLen > 0 {
		s, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		if n := utf8.RuneCountInString(s); n < r.MinLength || (r.MaxLen > 0 && n > r.MaxLen) {
			return bad(fmt.Sprintf("%d to %d characters, got %d", r.MinLength, r.MaxLen, n))
		}
	}
	return nil
}

func (r ArgRule) rangeText() string {
	switch {
	case r.Min != nil && r.Max != nil:
		return fmt.Sprintf(" from %d to %d", *r.Min, *r.Max)
	case r.Min != nil:
		return fmt.Sprintf(" of at least %d", *r.Min)
	case r.Max != nil:
		return fmt.Sprintf(" of at most %d", *r.Max)
	}
	return ""
}

// wholeNumber reads a JSON integer however the transport decoded it.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		if n != float64(int64(n)) {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// checkArgs refuses, before the pipeline (so before an idempotency key
// is taken or money held), arguments outside the tool's declared rules.
func checkArgs(t Tool, args map[string]any) error {
	for _, name := range slices.Sorted(maps.Keys(t.args)) {
		if v, ok := args[name]; ok && v != nil {
			if err := t.args[name].check(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}
