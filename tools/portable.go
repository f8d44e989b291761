package tools

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
)

// Tool _meta keys: the scopes a token needs for the tool and the human
// gates it may ask, so a client (tollgate call --list) can show them.
const (
	MetaScopes = "tollgate.dev/scopes"
	MetaGates  = "tollgate.dev/gates"
)

// withMeta publishes the tool's scopes and gates in its _meta.
// It builds a new Meta: def is a copy whose Meta the original shares.
func withMeta(def *mcp.Tool, t Tool) {
	m := &mcp.Meta{AdditionalFields: map[string]any{}}
	if def.Meta != nil {
		m.ProgressToken = def.Meta.ProgressToken
		maps.Copy(m.AdditionalFields, def.Meta.AdditionalFields)
	}
	m.AdditionalFields[MetaScopes] = slices.Clone(nonNil(t.Scopes))
	m.AdditionalFields[MetaGates] = slices.Clone(nonNil(t.Gates))
	def.Meta = m
}

// portable rewrites a tool's schemas into the spelling every MCP client
// maps (MCP Inspector's strict mode checks it): a type is one string, never
// a ["null", T] union, which single-type dialects (the OpenAPI subset of
// some model providers) reject. The generator writes a Go slice or
// pointer as such a union.
//   - Input schemas: the argument is simply optional, so the null branch
//     goes (leaving an argument out already means "none").
//   - Output schemas: a result may hold null there, so the union becomes
//     anyOf [{type: null}, {type: T, ...}], the same contract spelled portably.
func portable(def *mcp.Tool) error {
	in := def.RawInputSchema
	if in == nil {
		b, err := json.Marshal(def.InputSchema)
		if err != nil {
			return fmt.Errorf("tools: %s input schema: %w", def.Name, err)
		}
		in = b
	}
	out, err := rewriteSchema(in, false)
	if err != nil {
		return fmt.Errorf("tools: %s input schema: %w", def.Name, err)
	}
	def.RawInputSchema, def.InputSchema = out, mcp.ToolInputSchema{}
	if def.RawOutputSchema != nil {
		if def.RawOutputSchema, err = rewriteSchema(def.RawOutputSchema, true); err != nil {
			return fmt.Errorf("tools: %s output schema: %w", def.Name, err)
		}
	}
	return nil
}

func rewriteSchema(raw json.RawMessage, output bool) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(rewriteNode(v, output))
}

// schemaKeys hold subschemas by name; schemaLists, lists of subschemas.
var (
	schemaKeys  = []string{"properties", "$defs", "definitions", "patternProperties"}
	schemaOne   = []string{"items", "additionalProperties", "not", "contains", "propertyNames"}
	schemaLists = []string{"anyOf", "oneOf", "allOf", "prefixItems"}
)

func rewriteNode(v any, output bool) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for _, k := range schemaKeys {
		if props, ok := m[k].(map[string]any); ok {
			for name, sub := range props {
				props[name] = rewriteNode(sub, output)
			}
		}
	}
	for _, k := range schemaOne {
		if sub, ok := m[k]; ok {
			m[k] = rewriteNode(sub, output)
		}
	}
	for _, k := range schemaLists {
		if subs, ok := m[k].([]any); ok {
			for i, sub := range subs {
				subs[i] = rewriteNode(sub, output)
			}
		}
	}
	types, ok := m["type"].([]any)
	if !ok {
		return m
	}
	var rest []any
	hasNull := false
	for _, t := range types {
		if t == "null" {
			hasNull = true
			continue
		}
		rest = append(rest, t)
	}
	if len(rest) != 1 {
		return m // nothing this rewrite knows how to say with one type
	}
	m["type"] = rest[0]
	if !hasNull || !output {
		return m
	}
	// The annotations stay on the outside, where clients show them.
	wrapped := map[string]any{}
	for _, k := range []string{"description", "title"} {
		if d, ok := m[k]; ok {
			wrapped[k] = d
			delete(m, k)
		}
	}
	wrapped["anyOf"] = []any{map[string]any{"type": "null"}, m}
	return wrapped
}
