package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
)

// human plays the person at the gates: it prints what it was shown,
// approves form gates and completes URL-mode gates in the sandbox's pages.
type human struct {
	email string
	asked atomic.Int32
}

func (h *human) Elicit(_ context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.asked.Add(1)
	p := r.Params
	fmt.Printf("   ┌ gate (%s mode) — the human is shown:\n%s\n", orDefault(p.Mode, "form"), indent(p.Message, "   │ "))
	if p.Mode == mcp.ElicitationModeURL {
		fmt.Printf("   │ URL: %s\n", p.URL)
		if err := browse(h.email, p.URL); err != nil {
			fmt.Printf("   └ the human could not complete the page (%v): cancel\n", err)
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionCancel}}, nil
		}
		fmt.Printf("   └ the human completed the page: accept\n")
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
	}
	content := answer(p.RequestedSchema)
	b, _ := json.Marshal(content)
	fmt.Printf("   └ the human answers: accept %s\n", b)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: content}}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// answer fills a form schema the way a consenting human would: yes to every
// boolean, the default, constant or first choice elsewhere.
func answer(schema any) map[string]any {
	b, _ := json.Marshal(schema)
	var sc struct {
		Properties map[string]map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(b, &sc)
	out := map[string]any{}
	for k, p := range sc.Properties {
		switch {
		case p["const"] != nil:
			out[k] = p["const"]
		case p["type"] == "boolean":
			out[k] = true
		case p["default"] != nil:
			out[k] = p["default"]
		case len(asSlice(p["enum"])) > 0:
			out[k] = asSlice(p["enum"])[0]
		}
	}
	if len(out) == 0 {
		out["approve"] = true
	}
	return out
}
