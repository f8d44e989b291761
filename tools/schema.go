package tools

import (
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// errorSchema describes the structured content of a refusal (see Refuse).
var errorSchema = map[string]any{
	"type":     "object",
	"required": []string{"error"},
	"properties": map[string]any{
		"error": map[string]any{
			"type":     "object",
			"required": []string{"code", "message", "provider_called"},
			"properties": map[string]any{
				"code":            map[string]any{"type": "string"},
				"message":         map[string]any{"type": "string"},
				"provider_called": map[string]any{"type": "boolean"},
				"details":         map[string]any{"type": "object", "additionalProperties": true},
			},
		},
	},
}

// allowRefusals widens a tool's output schema to "the result, or a
// refusal": clients validate structuredContent against the output schema
// even on isError results, and a refusal must reach the agent as a result
// with its code, not as a protocol error.
func allowRefusals(def *mcp.Tool) error {
	if def.OutputSchema.Type == "" {
		return nil
	}
	raw, err := json.Marshal(def.OutputSchema)
	if err != nil {
		return fmt.Errorf("tools: %s output schema: %w", def.Name, err)
	}
	var orig map[string]any
	if err := json.Unmarshal(raw, &orig); err != nil {
		return fmt.Errorf("tools: %s output schema: %w", def.Name, err)
	}
	wrapped := map[string]any{"type": "object", "anyOf": []any{orig, errorSchema}}
	// References point at the root's $defs, so they move up with it.
	for _, k := range []string{"$defs", "definitions"} {
		if d, ok := orig[k]; ok {
			wrapped[k] = d
			delete(orig, k)
		}
	}
	out, err := json.Marshal(wrapped)
	if err != nil {
		return fmt.Errorf("tools: %s output schema: %w", def.Name, err)
	}
	def.RawOutputSchema = out
	def.OutputSchema = mcp.ToolOutputSchema{}
	return nil
}
