//go:build !nosandbox

package compose_test

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

// TestDeployPromoteProductionGate: preview, then promote, in alice's own
// linked account; decline leaves production as it was, accept makes the
// preview live; the gate shows the name, the domain, the account, sizes
// and hashes, and the changed lines. HTTP in both eras and in-process.
func TestDeployPromoteProductionGate(t *testing.T) {
	a, ts := newApp(t)
	// Each connection deploys the Worker of its own domain: the Worker is
	// named after the domain it serves, '-' doubled and '.' as '-'.
	type target struct{ domain, worker string }
	targets := map[string]target{
		"http modern": {"http-modern.com", "http--modern-com"},
		"http legacy": {"http-legacy.com", "http--legacy-com"},
		"in-process":  {"in-process.com", "in--process-com"},
	}
	var domains []string
	for _, tg := range targets {
		domains = append(domains, tg.domain)
		a.AddTestZone(t, alicePrincipal, tg.domain)
	}
	acct := a.LinkTestAccount(t, alicePrincipal)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources(domains...)})
	conns := map[string]func(h *human) *client.Client{
		"http modern": func(h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Modern, Headers: testkit.Bearer(tok), Elicit: h})
		},
		"http legacy": func(h *human) *client.Client {
			return testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Legacy, Headers: testkit.Bearer(tok), Elicit: h})
		},
		"in-process": func(h *human) *client.Client {
			a.Credentials = func(context.Context) (string, error) { return tok, nil }
			return testkit.InProcessClient(t, a.InProcessClient, testkit.ClientOptions{Elicit: h})
		},
	}
	fake := a.FakeCloudflare()
	for name, dial := range conns {
		t.Run(name, func(t *testing.T) {
			domain, worker := targets[name].domain, targets[name].worker
			fake.PutScriptIn(acct, worker, []byte(scriptV1))
			decline := &human{action: mcp.ElicitationResponseActionDecline}
			c := dial(decline)
			res, err := call(t, c, "deploy_preview", map[string]any{"name": worker, "script": scriptV2})
			if err != nil || res.IsError {
				t.Fatalf("deploy_preview: %v %v", err, res)
			}
			pv := structured(t, res)
			id := pv["preview_id"].(string)
			if pv["url"] == "" || pv["preview_name"] != worker+"---preview-"+id || pv["domain"] != domain || pv["account_id"] != acct {
				t.Fatalf("preview %v", pv)
			}
			res, _ = call(t, c, "deploy_promote", map[string]any{"name": worker, "preview_id": id})
			if code := errCode(t, res); code != "gate_declined" {
				t.Fatalf("declined promote: %q", code)
			}
			if got := string(fake.ScriptsIn(acct)[worker].Body); got != scriptV1 {
				t.Fatalf("production changed after a decline: %q", got)
			}
			msg, _ := decline.last.Load().(string)
			for _, want := range []string{worker, domain, acct, "sha256", "bytes", "-  fetch() { return new Response('v1'); }", "+  fetch() { return new Response('v2, with a new banner'); }"} {
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
			if out := structured(t, res); out["domain"] != domain || out["account_id"] != acct {
				t.Fatalf("promote result %v", out)
			}
			if got := string(fake.ScriptsIn(acct)[worker].Body); got != scriptV2 {
				t.Fatalf("production after accept: %q", got)
			}
		})
	}
}

func TestDeployPromoteRefusals(t *testing.T) {
	a, ts := newApp(t)
	a.AddTestZone(t, alicePrincipal, "promote-demo.com")
	a.AddTestZone(t, alicePrincipal, "swap-demo.com")
	acct := a.LinkTestAccount(t, alicePrincipal)
	fake := a.FakeCloudflare()
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources("promote-demo.com", "swap-demo.com")})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	tests := []struct {
		name string
		args map[string]any
		code string
	}{
		{"unknown preview", map[string]any{"name": "promote--demo-com", "preview_id": "0123456789ab"}, "not_found"},
		{"path traversal name", map[string]any{"name": "../shop", "preview_id": "0123456789ab"}, "invalid_argument"},
		{"missing preview id", map[string]any{"name": "promote--demo-com"}, "invalid_argument"},
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
	// A token naming no domains may only read: it neither uploads a
	// preview nor promotes one, whatever Worker it names.
	bare := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Elicit: h,
		Headers: testkit.Bearer(testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "unnamed", Scope: "deploy:preview deploy:production"}))})
	before := len(fake.Requests())
	res, _ := call(t, bare, "deploy_preview", map[string]any{"name": "promote--demo-com", "script": scriptV1})
	if code := errCode(t, res); code != "resource_forbidden" {
		t.Fatalf("deploy_preview with a token naming no domains: %q", code)
	}
	res, _ = call(t, bare, "deploy_promote", map[string]any{"name": "promote--demo-com", "preview_id": "0123456789abcdef0123456789abcdef"})
	if code := errCode(t, res); code != "resource_forbidden" {
		t.Fatalf("deploy_promote with a token naming no domains: %q", code)
	}
	if got := len(fake.Requests()); got != before || len(fake.ScriptsIn(acct)) != 0 || h.asked.Load() != 0 {
		t.Fatalf("a token naming no domains reached Cloudflare (%d requests), left %d scripts, asked %d", got-before, len(fake.ScriptsIn(acct)), h.asked.Load())
	}
	// A preview whose content was swapped after it was made is not promoted.
	res, _ = call(t, c, "deploy_preview", map[string]any{"name": "swap--demo-com", "script": scriptV1})
	pv := structured(t, res)
	id := pv["preview_id"].(string)
	if pv["preview_name"] != "swap--demo-com---preview-"+id {
		t.Fatalf("preview %v", pv)
	}
	fake.PutScriptIn(acct, "swap--demo-com---preview-"+id, []byte(scriptV2))
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "swap--demo-com", "preview_id": id})
	if code := errCode(t, res); code != "invalid_argument" {
		t.Fatalf("swapped preview: %q", code)
	}
	if _, ok := fake.ScriptsIn(acct)["swap--demo-com"]; ok {
		t.Fatal("the swapped preview went live")
	}
}

// TestApprovalCoversOnlyWhatWasShown: production changed after the human
// approved a promotion (the "Now:" they saw is stale): the approval does
// not cover the call any more.
func TestApprovalCoversOnlyWhatWasShown(t *testing.T) {
	a, ts := newApp(t)
	a.AddTestZone(t, alicePrincipal, "stale-demo.com")
	acct := a.LinkTestAccount(t, alicePrincipal)
	const worker = "stale--demo-com"
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources("stale-demo.com")})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	a.FakeCloudflare().PutScriptIn(acct, worker, []byte(scriptV1))
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": worker, "script": scriptV2})
	id := structured(t, res)["preview_id"].(string)
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": worker, "preview_id": id})
	if errCode(t, res) != "approval_required" {
		t.Fatalf("want approval_required: %v", structured(t, res))
	}
	approval := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	if _, err := a.Approvals().Decide(context.Background(), approval, alicePrincipal, true, "alice"); err != nil {
		t.Fatal(err)
	}
	a.FakeCloudflare().PutScriptIn(acct, worker, []byte("export default {}; // changed meanwhile\n"))
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": worker, "preview_id": id, "approval_id": approval})
	if code := errCode(t, res); code != "gate_changed" {
		t.Fatalf("stale approval: %q", code)
	}
	if got := string(a.FakeCloudflare().ScriptsIn(acct)[worker].Body); got == scriptV2 {
		t.Fatal("promoted on a stale approval")
	}
}

// TestDeploymentsStayInsideResources: a token limited to some domains may
// only deploy the Workers of those domains — the Worker whose name encodes
// exactly one of them — and only when the domain is a zone of the linked
// account.
func TestDeploymentsStayInsideResources(t *testing.T) {
	a, ts := newApp(t)
	a.AddTestZone(t, alicePrincipal, "shop-demo.com")
	acct := a.LinkTestAccount(t, alicePrincipal)
	fake := a.FakeCloudflare()
	// unrecorded-demo.com is named by the token but is no zone of alice's account.
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources("shop-demo.com", "unrecorded-demo.com")})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	fake.PutScriptIn(acct, "billing-api", []byte(scriptV1))
	refused := []struct{ name, why, code string }{
		{"billing-api", "the Worker of billing.api", "resource_forbidden"},
		{"shop-demo-com-evil", "the Worker of shop.demo.com.evil", "resource_forbidden"},
		// The names the old, lossy encoding gave shop-demo.com now stand
		// for other domains.
		{"shop-demo-com", "the Worker of shop.demo.com", "resource_forbidden"},
		{"shop-demo", "the Worker of shop.demo", "resource_forbidden"},
		{"unrecorded--demo-com", "named, but not a zone of the account", "resource_forbidden"},
		{"shopdemo", "no domain's Worker (no TLD)", "invalid_argument"},
		{"shop--demo-com---preview-0123456789ab", "a preview name, no domain's Worker", "invalid_argument"},
	}
	before := len(fake.Requests())
	for _, r := range refused {
		res, _ := call(t, c, "deploy_preview", map[string]any{"name": r.name, "script": scriptV2})
		if code := errCode(t, res); code != r.code {
			t.Fatalf("deploy_preview %s (%s): %q, want %s", r.name, r.why, code, r.code)
		}
		res, _ = call(t, c, "deploy_promote", map[string]any{"name": r.name, "preview_id": "0123456789abcdef0123456789abcdef"})
		if code := errCode(t, res); code != r.code {
			t.Fatalf("deploy_promote %s (%s): %q, want %s", r.name, r.why, code, r.code)
		}
	}
	if got := len(fake.Requests()); got != before {
		t.Fatalf("refused deployments reached Cloudflare %d times", got-before)
	}
	if got := string(fake.ScriptsIn(acct)["billing-api"].Body); got != scriptV1 || len(fake.ScriptsIn(acct)) != 1 {
		t.Fatalf("a Worker outside the task changed: %v", fake.ScriptsIn(acct))
	}
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": "shop--demo-com", "script": scriptV2})
	if res.IsError {
		t.Fatalf("deploy_preview shop--demo-com: %v", structured(t, res))
	}
	if out := structured(t, res); out["domain"] != "shop-demo.com" || out["account_id"] != acct {
		t.Fatalf("deploy_preview shop--demo-com: %v", out)
	}
	if h.asked.Load() != 0 {
		t.Fatal("a human was asked about a refused deployment")
	}
}
