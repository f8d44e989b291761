package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// ErrorBody is the structured content of every tool error: a stable code, a
// message a person can act on, and whether a provider was called.
type ErrorBody struct {
	Code           fault.Code `json:"code"`
	Message        string     `json:"message"`
	ProviderCalled bool       `json:"provider_called"`
	Details        any        `json:"details,omitempty"`
}

// Refuse turns err into an isError tool result. It is the one place a Go
// error becomes what the agent sees; internal causes are never shown.
// provider_called comes from err itself (provider.Reached): true when a
// provider's error in its chain says the request reached, or may have
// reached, the provider, or when the refusal was marked provider.AfterCall.
func Refuse(err error) *mcp.CallToolResult {
	called := provider.Reached(err)
	body := ErrorBody{Code: fault.CodeOf(err), Message: fault.PublicOf(err), ProviderCalled: called}
	var d interface{ Details() any }
	if errors.As(err, &d) {
		body.Details = d.Details()
	}
	text := fmt.Sprintf("%s: %s", body.Code, body.Message)
	if !called {
		text += " (no provider was called; nothing was charged or changed)"
	}
	res := mcp.NewToolResultStructured(map[string]any{"error": body}, text)
	res.IsError = true
	return res
}

// bind decodes the call's arguments into v strictly: unknown fields and
// trailing data are refused, numbers keep their exact text.
func bind(req mcp.CallToolRequest, v any) error {
	raw, err := json.Marshal(req.GetRawArguments())
	if err != nil {
		return fault.New(fault.InvalidArgument, "arguments are not a JSON object")
	}
	if string(raw) == "null" {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fault.Wrap(err, fault.InvalidArgument, "arguments do not match the tool's input schema: "+err.Error())
	}
	return nil
}

// result returns a result whose structured content is v and whose text is its JSON.
func result(v any) *mcp.CallToolResult { return mcp.NewToolResultStructuredOnly(v) }
