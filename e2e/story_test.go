package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// storyScopes is every scope the provisioning story uses.
const storyScopes = "catalog:read domain:read domain:register dns:read dns:write ssl:write token:create " +
	"deploy:preview deploy:production subscription:create spend:read account:link billing:setup"

// TestTypeScriptSDKWholeStory runs the provisioning story of `make demo`
// through the official TypeScript SDK client over Streamable HTTP
// (2025-11-25, so the server bridges elicitation/create): the client's
// elicitation handler plays the human, completing the URL-mode gates of
// account_connect (Cloudflare OAuth consent) and billing_setup (Stripe
// Checkout) by signing in on the approvals page and submitting the fixture
// pages, and approving the form gates of deploy_promote and
// subscription_start.
func TestTypeScriptSDKWholeStory(t *testing.T) {
	tsClient(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	const domain, worker = "ts-story.com", "ts-story"
	details := fmt.Sprintf(`[{"type":"tollgate:resources","domains":[%q]},`+
		`{"type":"tollgate:spend","provider":"cloudflare","max_amount":"50.00","currency":"usd"},`+
		`{"type":"tollgate:spend","provider":"stripe","max_amount":"50.00","currency":"usd"}]`, domain)
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: storyScopes, Details: details})
	args := []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}
	// One answer for every question: approve a form, complete a URL flow.
	human := map[string]any{
		"action":   "accept",
		"content":  map[string]any{"approve": true},
		"url_flow": map[string]any{"email": "alice@example.com"},
	}

	// Part one: quote, link the account, set up billing, and provision
	// everything up to a preview.
	steps := []step{
		listTools(),
		callTool("plan_quote", map[string]any{"actions": []map[string]any{
			{"tool": "domain_register", "arguments": map[string]any{"domain": domain}},
			{"tool": "dns_upsert", "arguments": map[string]any{"zone": domain, "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true}},
			{"tool": "ssl_configure", "arguments": map[string]any{"zone": domain, "mode": "strict"}},
			{"tool": "deploy_promote", "arguments": map[string]any{"name": worker}},
			{"tool": "subscription_start", "arguments": map[string]any{"plan": "plan.starter"}},
		}}),
		callTool("account_connect", nil),
		callTool("billing_setup", nil),
		callTool("domain_check", map[string]any{"domain": domain}),
		callTool("domain_register", map[string]any{"domain": domain}),
		callTool("dns_upsert", map[string]any{"zone": domain, "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true}),
		callTool("ssl_configure", map[string]any{"zone": domain, "mode": "strict", "always_https": true, "min_tls": "1.2"}),
		callTool("api_token_create", map[string]any{"zone": domain, "permissions": []string{"DNS Write"}, "expires_in": 86400, "name": "ts_story_dns"}),
		callTool("deploy_preview", map[string]any{"name": worker, "script": "export default { fetch() { return new Response('hello from " + domain + "') } };\n"}),
	}
	out := runTS(t, tsScript{Elicit: human, Steps: steps}, args...)
	if out.ProtocolVersion != sdkProtocolVersion {
		t.Errorf("negotiated protocol version %q, want %q", out.ProtocolVersion, sdkProtocolVersion)
	}
	r := map[string]map[string]any{}
	for i, s := range steps[1:] {
		r[s.Name] = storyStep(t, s.Name, out.Results[i+1])
	}
	if fits, _ := r["plan_quote"]["fits"].(bool); !fits {
		t.Errorf("plan_quote: the plan does not fit: %v", r["plan_quote"])
	}
	if m, _ := r["plan_quote"]["missing_scopes"].([]any); len(m) > 0 {
		t.Errorf("plan_quote: missing scopes %v with every scope granted", m)
	}
	wantField(t, "account_connect", r["account_connect"], "status", "linked")
	wantField(t, "billing_setup", r["billing_setup"], "status", "on_file")
	if av, _ := r["domain_check"]["available"].(bool); !av {
		t.Errorf("domain_check %s: not available: %v", domain, r["domain_check"])
	}
	wantField(t, "domain_register", r["domain_register"], "status", "registered")
	if rec, _ := r["dns_upsert"]["record"].(map[string]any); rec["content"] != "192.0.2.10" {
		t.Errorf("dns_upsert: record %v", r["dns_upsert"]["record"])
	}
	wantField(t, "ssl_configure", r["ssl_configure"], "mode", "strict")
	tk := r["api_token_create"]
	if s, _ := tk["secret_stored_as"].(string); s == "" {
		t.Errorf("api_token_create: no secret_stored_as: %v", tk)
	}
	for _, k := range []string{"secret", "token", "value", "token_secret"} {
		if _, there := tk[k]; there {
			t.Errorf("api_token_create: the result carries %q: %v", k, tk)
		}
	}
	preview, _ := r["deploy_preview"]["preview_id"].(string)
	if preview == "" {
		t.Fatalf("deploy_preview: no preview_id: %v", r["deploy_preview"])
	}
	urlGates := 0
	for _, raw := range out.Elicitations {
		var e struct {
			Mode    string `json:"mode"`
			URL     string `json:"url"`
			URLFlow *struct {
				Pages []string `json:"pages"`
				Error string   `json:"error"`
			} `json:"_url_flow"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("elicitation %s: %v", raw, err)
		}
		if e.Mode != "url" {
			continue
		}
		urlGates++
		if e.URLFlow != nil && len(e.URLFlow.Pages) > 0 {
			last := e.URLFlow.Pages[len(e.URLFlow.Pages)-1]
			if !strings.Contains(last, "/oauth/callback/cloudflare?") && !strings.Contains(last, "/oauth/callback/stripe?") {
				t.Errorf("URL flow %s did not end at tollgate's callback: %s", e.URL, last)
			}
			t.Logf("the human completed %s:\n  %s", e.URL, strings.Join(e.URLFlow.Pages, "\n  "))
		}
		if e.URLFlow == nil || e.URLFlow.Error != "" || len(e.URLFlow.Pages) == 0 {
			t.Errorf("URL-mode elicitation %s was not completed: %s", e.URL, raw)
		}
	}
	if urlGates != 2 {
		t.Errorf("%d URL-mode elicitations, want 2 (account_connect, billing_setup): %s", urlGates, out.Elicitations)
	}

	// Part two: go live, subscribe, and read what it cost.
	steps = []step{
		listTools(),
		callTool("deploy_promote", map[string]any{"name": worker, "preview_id": preview}),
		callTool("subscription_start", map[string]any{"plan": "plan.starter"}),
		callTool("spend_status", map[string]any{}),
	}
	out = runTS(t, tsScript{Elicit: human, Steps: steps}, args...)
	promote := storyStep(t, "deploy_promote", out.Results[1])
	if promote["preview_id"] != preview {
		t.Errorf("deploy_promote: live is %v, want preview %s", promote["preview_id"], preview)
	}
	// The fixture names each live script by its sha256.
	if sum, _ := r["deploy_preview"]["sha256"].(string); sum == "" || liveScripts(t, srv.URL)[worker] != sum {
		t.Errorf("production after the promote is %q, want the preview's sha256 %q", liveScripts(t, srv.URL)[worker], sum)
	}
	sub := storyStep(t, "subscription_start", out.Results[2])
	wantField(t, "subscription_start", sub, "status", "active")
	if p, _ := sub["plan"].(string); !strings.Contains(p, "starter") {
		t.Errorf("subscription_start: plan %q, want the starter plan: %v", p, sub)
	}
	forms := 0
	for _, raw := range out.Elicitations {
		var e struct {
			Mode string `json:"mode"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Mode == "" || e.Mode == "form" {
			forms++
		}
	}
	if forms != 2 || len(out.Elicitations) != 2 {
		t.Errorf("%d elicitations (%d forms), want 2 form gates (deploy_promote, subscription_start): %s", len(out.Elicitations), forms, out.Elicitations)
	}

	var st struct {
		Providers []struct {
			Provider string `json:"provider"`
			Spent    struct {
				Minor    int64  `json:"amount_minor"`
				Currency string `json:"currency"`
			} `json:"spent"`
		} `json:"providers"`
	}
	b, _ := json.Marshal(storyStep(t, "spend_status", out.Results[3]))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("spend_status: %s: %v", b, err)
	}
	want := map[string]int64{"cloudflare": 1117, "stripe": 900}
	for _, p := range st.Providers {
		w, ok := want[p.Provider]
		if !ok {
			continue
		}
		delete(want, p.Provider)
		if p.Spent.Minor != w || !strings.EqualFold(p.Spent.Currency, "usd") {
			t.Errorf("spend_status %s: spent %d %s, want %d USD", p.Provider, p.Spent.Minor, p.Spent.Currency, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("spend_status has no line for %v: %s", want, b)
	}
}

// storyStep decodes one step of the story and fails the test when it was
// refused or failed.
func storyStep(t *testing.T, name string, raw json.RawMessage) map[string]any {
	t.Helper()
	var res callResult
	decodeResult(t, name, raw, &res)
	if res.IsError {
		t.Fatalf("%s: isError: %s", name, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(res.StructuredContent, &m); err != nil || m == nil {
		t.Fatalf("%s: no structured result: %s", name, raw)
	}
	return m
}

func wantField(t *testing.T, what string, m map[string]any, key, want string) {
	t.Helper()
	if got, _ := m[key].(string); got != want {
		t.Errorf("%s: %s is %q, want %q: %v", what, key, got, want, m)
	}
}
