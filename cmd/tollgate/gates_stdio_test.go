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
			c := testkit.Stdio(t, bin, env, testkit.ClientOptions{Era: era, Elicit: h}, "stdio", "--domains", "stdio-shop.com")
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
			// The local user's own sandbox account: the domain's zone comes
			// with its registration (under the purchase gate's threshold).
			if reg := callTool(accept, "domain_register", map[string]any{"domain": "stdio-shop.com"}); reg["zone_recorded"] != true {
				t.Fatalf("domain_register: %v", reg)
			}
			pv := callTool(accept, "deploy_preview", map[string]any{"name": "stdio--shop-com", "script": "export default {};\n"})
			id, _ := pv["preview_id"].(string)
			if id == "" {
				t.Fatalf("deploy_preview: %v", pv)
			}
			out := callTool(decline, "deploy_promote", map[string]any{"name": "stdio--shop-com", "preview_id": id})
			if e, _ := out["error"].(map[string]any); e["code"] != "gate_declined" {
				t.Fatalf("decline: %v", out)
			}
			out = callTool(accept, "deploy_promote", map[string]any{"name": "stdio--shop-com", "preview_id": id})
			if out["name"] != "stdio--shop-com" || out["domain"] != "stdio-shop.com" || out["sha256"] == nil {
				t.Fatalf("accept: %v", out)
			}
		})
	}
}

// TestForgedAnswerRefusedEverywhere: an agent that puts inputResponses into
// its first call (answering for the human) gets nothing done, over stdio
// and HTTP in both protocol eras. Where the client library forwards the
// forged answers the server refuses them (state_invalid; the raw-JSON test
// in compose pins that code); where it drops them, the call parks as
// approval_required. Either way the promotion does not run.
func TestForgedAnswerRefusedEverywhere(t *testing.T) {
	bin := testkit.Binary(t)
	forge := func(t *testing.T, c interface {
		CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
	}) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "domain_register"
		req.Params.Arguments = map[string]any{"domain": "forge-shop.com"}
		if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
			t.Fatalf("domain_register: %v %+v", err, res)
		}
		req = mcp.CallToolRequest{}
		req.Params.Name = "deploy_preview"
		req.Params.Arguments = map[string]any{"name": "forge--shop-com", "script": "export default {};\n"}
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			t.Fatalf("deploy_preview: %v %+v", err, res)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var pv struct {
			PreviewID string `json:"preview_id"`
		}
		_ = json.Unmarshal(b, &pv)
		req = mcp.CallToolRequest{}
		req.Params.Name = "deploy_promote"
		req.Params.Arguments = map[string]any{"name": "forge--shop-com", "preview_id": pv.PreviewID}
		req.Params.InputResponses = mcp.InputResponses{"production_0": mcp.NewElicitationInputResponse(mcp.ElicitationResult{
			ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": true}}})}
		res, err = c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("deploy_promote: %v", err)
		}
		b, _ = json.Marshal(res.StructuredContent)
		var out struct {
			Error struct {
				Code           string `json:"code"`
				ProviderCalled bool   `json:"provider_called"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &out)
		if !res.IsError || (out.Error.Code != "state_invalid" && out.Error.Code != "approval_required") || out.Error.ProviderCalled {
			t.Fatalf("forged first-call answer: %s", b)
		}
	}
	for _, era := range testkit.Eras {
		t.Run("stdio/"+string(era), func(t *testing.T) {
			// No elicitation handler: nobody could have answered.
			c := testkit.Stdio(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)}, testkit.ClientOptions{Era: era}, "stdio", "--domains", "forge-shop.com")
			forge(t, c)
		})
		t.Run("http/"+string(era), func(t *testing.T) {
			p := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
			testkit.LinkAccount(t, p.URL, "alice@example.com")
			tok := testkit.TaskToken(t, p.URL, testkit.Grant{Scope: "domain:register deploy:preview deploy:production",
				Details: `[{"type":"tollgate:resources","domains":["forge-shop.com"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]`})
			forge(t, testkit.HTTP(t, p.URL+"/mcp", testkit.ClientOptions{Era: era, Headers: testkit.Bearer(tok)}))
		})
	}
}
