package main

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// answer plays the human; the test switches what they say between calls.
type answer struct{ action atomic.Value }

func (a *answer) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	act := a.action.Load().(mcp.ElicitationResponseAction)
	r := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: act}}
	if act == mcp.ElicitationResponseActionAccept {
		r.Content = map[string]any{"approve": true}
	}
	return r, nil
}

// TestProductionGateOverStdio: the production gate over stdio in both
// protocol eras (multi-round-trip, and elicitation/create through the
// bridge), with the sandbox's local session.
func TestProductionGateOverStdio(t *testing.T) {
	bin := testkit.Binary(t)
	for _, era := range testkit.Eras {
		t.Run(string(era), func(t *testing.T) {
			env := []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)}
			h := &answer{}
			// One process: its sandbox Cloudflare keeps the preview.
			c := testkit.Stdio(t, bin, env, testkit.ClientOptions{Era: era, Elicit: h}, "stdio")
			callTool := func(act mcp.ElicitationResponseAction, name string, args map[string]any) map[string]any {
				h.action.Store(act)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = name, args
				res, err := c.CallTool(ctx, req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				b, _ := json.Marshal(res.StructuredContent)
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				return m
			}
			accept, decline := mcp.ElicitationResponseActionAccept, mcp.ElicitationResponseActionDecline
			pv := callTool(accept, "deploy_preview", map[string]any{"name": "stdio-shop", "script": "export default {};\n"})
			id, _ := pv["preview_id"].(string)
			if id == "" {
				t.Fatalf("deploy_preview: %v", pv)
			}
			out := callTool(decline, "deploy_promote", map[string]any{"name": "stdio-shop", "preview_id": id})
			if e, _ := out["error"].(map[string]any); e["code"] != "gate_declined" {
				t.Fatalf("decline: %v", out)
			}
			out = callTool(accept, "deploy_promote", map[string]any{"name": "stdio-shop", "preview_id": id})
			if out["name"] != "stdio-shop" || out["sha256"] == nil {
				t.Fatalf("accept: %v", out)
			}
		})
	}
}
