package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// catalog_get declares mcp.WithOutputSchema[catalog.Service](), a schema
// reflected from the Go type with additionalProperties false. The JSON a
// Service marshals to must fit it, or strict clients reject the result.
func TestServiceWireFormFitsReflectedOutputSchema(t *testing.T) {
	tool := mcp.NewTool("catalog_get", mcp.WithOutputSchema[Service]())
	b, err := json.Marshal(tool.OutputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	for _, s := range mustLoad(t).All() {
		wire, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(wire, &v); err != nil {
			t.Fatal(err)
		}
		if err := fits(schema, v, s.ID); err != nil {
			t.Errorf("%v\nschema: %s", err, b)
		}
	}
}

// fits checks v against the parts of JSON Schema the reflector emits: type,
// properties, required and additionalProperties false.
func fits(schema map[string]any, v any, at string) error {
	if !typeOK(schema, v) {
		return fmt.Errorf("%s: %T does not fit type %v", at, v, schemaTypes(schema))
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		if arr, ok := v.([]any); ok {
			if items, ok := schema["items"].(map[string]any); ok {
				for i, e := range arr {
					if err := fits(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	props, _ := schema["properties"].(map[string]any)
	for _, r := range asStrings(schema["required"]) {
		if _, ok := obj[r]; !ok {
			return fmt.Errorf("%s: required property %q missing", at, r)
		}
	}
	closed := false
	if ap, ok := schema["additionalProperties"].(map[string]any); ok {
		_, closed = ap["not"]
	} else if ap, ok := schema["additionalProperties"].(bool); ok {
		closed = !ap
	}
	for k, e := range obj {
		ps, ok := props[k].(map[string]any)
		if !ok {
			if closed {
				return fmt.Errorf("%s: property %q is not in the schema", at, k)
			}
			continue
		}
		if err := fits(ps, e, at+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func schemaTypes(schema map[string]any) []string {
	if s, ok := schema["type"].(string); ok {
		return []string{s}
	}
	return asStrings(schema["type"])
}

func typeOK(schema map[string]any, v any) bool {
	types := schemaTypes(schema)
	if len(types) == 0 {
		return true
	}
	var got []string
	switch x := v.(type) {
	case nil:
		got = []string{"null"}
	case bool:
		got = []string{"boolean"}
	case string:
		got = []string{"string"}
	case float64:
		got = []string{"number"}
		if x == float64(int64(x)) {
			got = append(got, "integer")
		}
	case []any:
		got = []string{"array"}
	case map[string]any:
		got = []string{"object"}
	}
	for _, g := range got {
		if slices.Contains(types, g) {
			return true
		}
	}
	return false
}

func asStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = x
	}
	return out
}
