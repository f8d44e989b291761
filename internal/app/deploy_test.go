package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

const (
	scriptV1 = "export default {\n  fetch() { return new Response('v1'); }\n};\n"
	scriptV2 = "export default {\n  fetch() { return new Response('v2, with a new banner'); }\n};\n"
)

// TestDeployPromoteProductionGate: preview, then promote; decline leaves
// production as it was, accept makes the preview live; the gate shows the
// name, sizes and hashes, and the changed lines. HTTP in both eras and
// in-process.
func TestDeployPromoteProductionGate(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production"})
	conns := map[string]func(h *human) *client.Client{
		"http modern": func(h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Modern, Headers: testkit.Bearer(tok), Elicit: h})
		},
		"http legacy": func(h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Legacy, Headers: testkit.Bearer(tok), Elicit: h})
		},
		"in-process": func(h *human) *client.Client {
			a.Credentials = func(context.Context) (string, error) { return tok, nil }
			return testkit.InProcessClient(t, a.MCP, testkit.ClientOptions{Elicit: h})
		},
	}
	for name, dial := range conns {
		t.Run(name, func(t *testing.T) {
			worker := "shop-" + strings.ReplaceAll(name, " ", "-")
			a.FakeCloudflare().PutScript(worker, []byte(scriptV1))
			decline := &human{action: mcp.ElicitationResponseActionDecline}
			c := dial(decline)
			res, err := call(t, c, "deploy_preview", map[string]any{"name": worker, "script": scriptV2})
			if err != nil || res.IsError {
				t.Fatalf("deploy_preview: %v %v", err, res)
			}
			pv := structured(t, res)
			id := pv["preview_id"].(string)
			if pv["url"] == "" || !strings.Contains(pv["preview_name"].(string), id) {
				t.Fatalf("preview %v", pv)
			}
			res, _ = call(t, c, "deploy_promote", map[string]any{"name": worker, "preview_id": id})
			if code := errCode(t, res); code != "gate_declined" {
				t.Fatalf("declined promote: %q", code)
			}
			if got := string(a.FakeCloudflare().Scripts()[worker].Body); got != scriptV1 {
				t.Fatalf("production changed after a decline: %q", got)
			}
			msg, _ := decline.last.Load().(string)
			for _, want := range []string{worker, "sha256", "bytes", "-  fetch() { return new Response('v1'); }", "+  fetch() { return new Response('v2, with a new banner'); }"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("the production gate does not show %q:\n%s", want, msg)
				}
			}
			accept := &human{action: mcp.ElicitationResponseActionAccept}
			c = dial(accept)
			res, err = call(t, c, "deploy_promote", map[string]any{"name": worker, "preview_id": id})
			if err != nil || res.IsError {
				t.Fatalf("accepted promote: %v %v", err, res)
			}
			if got := string(a.FakeCloudflare().Scripts()[worker].Body); got != scriptV2 {
				t.Fatalf("production after accept: %q", got)
			}
		})
	}
}

func TestDeployPromoteRefusals(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production"})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	tests := []struct {
		name string
		args map[string]any
		code string
	}{
		{"unknown preview", map[string]any{"name": "shop", "preview_id": "0123456789ab"}, "not_found"},
		{"path traversal name", map[string]any{"name": "../shop", "preview_id": "0123456789ab"}, "invalid_argument"},
		{"missing preview id", map[string]any{"name": "shop"}, "invalid_argument"},
	}
	for _, tc := range tests {
		res, _ := call(t, c, "deploy_promote", tc.args)
		if code := errCode(t, res); code != tc.code {
			t.Fatalf("%s: %q", tc.name, code)
		}
	}
	if h.asked.Load() != 0 {
		t.Fatal("a human was asked about an invalid promotion")
	}
	// A preview whose content was swapped after it was made is not promoted.
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": "swap", "script": scriptV1})
	id := structured(t, res)["preview_id"].(string)
	a.FakeCloudflare().PutScript("swap-preview-"+id, []byte(scriptV2))
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "swap", "preview_id": id})
	if code := errCode(t, res); code != "invalid_argument" {
		t.Fatalf("swapped preview: %q", code)
	}
}

// TestApprovalCoversOnlyWhatWasShown: production changed after the human
// approved a promotion (the "Now:" they saw is stale): the approval does
// not cover the call any more.
func TestApprovalCoversOnlyWhatWasShown(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production"})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	a.FakeCloudflare().PutScript("stale", []byte(scriptV1))
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": "stale", "script": scriptV2})
	id := structured(t, res)["preview_id"].(string)
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "stale", "preview_id": id})
	if errCode(t, res) != "approval_required" {
		t.Fatalf("want approval_required: %v", structured(t, res))
	}
	approval := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	if _, err := a.Approvals().Decide(context.Background(), approval, "user:alice@example.com", true, "alice"); err != nil {
		t.Fatal(err)
	}
	a.FakeCloudflare().PutScript("stale", []byte("export default {}; // changed meanwhile\n"))
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "stale", "preview_id": id, "approval_id": approval})
	if code := errCode(t, res); code != "gate_changed" {
		t.Fatalf("stale approval: %q", code)
	}
	if got := string(a.FakeCloudflare().Scripts()["stale"].Body); got == scriptV2 {
		t.Fatal("promoted on a stale approval")
	}
}

// TestDeploymentsStayInsideResources: a token limited to some domains may
// only deploy their Workers.
func TestDeploymentsStayInsideResources(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources("shop-demo.com")})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	a.FakeCloudflare().PutScript("billing-api", []byte(scriptV1))
	for _, name := range []string{"billing-api", "shop-demo-com-evil", "shopdemo"} {
		res, _ := call(t, c, "deploy_preview", map[string]any{"name": name, "script": scriptV2})
		if code := errCode(t, res); code != "resource_forbidden" {
			t.Fatalf("deploy_preview %s: %q", name, code)
		}
		res, _ = call(t, c, "deploy_promote", map[string]any{"name": name, "preview_id": "0123456789abcdef0123456789abcdef"})
		if code := errCode(t, res); code != "resource_forbidden" {
			t.Fatalf("deploy_promote %s: %q", name, code)
		}
	}
	if got := string(a.FakeCloudflare().Scripts()["billing-api"].Body); got != scriptV1 {
		t.Fatal("a Worker outside the task changed")
	}
	for _, name := range []string{"shop-demo", "shop-demo-com"} {
		res, _ := call(t, c, "deploy_preview", map[string]any{"name": name, "script": scriptV2})
		if res.IsError {
			t.Fatalf("deploy_preview %s: %v", name, structured(t, res))
		}
	}
	if h.asked.Load() != 0 {
		t.Fatal("a human was asked about a refused deployment")
	}
}
