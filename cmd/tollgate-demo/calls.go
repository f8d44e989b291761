package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

type toolError struct {
	code, msg string
	details   map[string]any
}

func (e *toolError) Error() string { return e.code + ": " + e.msg }

func (s *story) must(name string, args map[string]any) map[string]any {
	out, err := s.call(name, args)
	if err != nil {
		fail(name, err)
	}
	return out
}

func (s *story) call(name string, args map[string]any) (map[string]any, error) {
	out, err := s.callOnce(name, args)
	var te *toolError
	// A client that could not finish a gate inline gets approval_required:
	// the scripted human completes the approval page and the call is retried.
	if errors.As(err, &te) && te.code == "approval_required" {
		id, _ := te.details["approval_id"].(string)
		u, _ := te.details["url"].(string)
		if u == "" && id != "" {
			u = *issuer + "/approvals/" + id
		}
		say("gate: approval_required — the human opens %s", u)
		if berr := browse(s.human.email, u); berr != nil {
			return nil, fmt.Errorf("%w (and the approval page could not be completed: %v)", err, berr)
		}
		args["approval_id"] = id
		return s.callOnce(name, args)
	}
	return out, err
}

func (s *story) callOnce(name string, args map[string]any) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = &mcp.Meta{ProgressToken: name}
	res, err := s.mcp.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if res.IsError {
		if e, ok := m["error"].(map[string]any); ok {
			te := &toolError{}
			te.code, _ = e["code"].(string)
			te.msg, _ = e["message"].(string)
			te.details, _ = e["details"].(map[string]any)
			return nil, te
		}
		var txt []string
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				txt = append(txt, t.Text)
			}
		}
		return nil, fmt.Errorf("%s: %s", name, strings.Join(txt, " "))
	}
	if m == nil {
		return nil, fmt.Errorf("%s: no structured result", name)
	}
	return m, nil
}

func list(v any) []map[string]any {
	var out []map[string]any
	for _, x := range asSlice(v) {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func strs(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func compact(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
