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

// storyHuman is one human of the story, what their agent provisions and
// what it must cost them.
type storyHuman struct {
	email, domain, record string
	subscribe             bool   // alice subscribes to plan.starter, bob does not
	connected             string // account_connect's status: linked (by consent) or created (after the terms)
	spent                 map[string]int64

	// Filled in as the story runs.
	args             []string // the story agent's connection
	account, preview string
	sha              string // the preview's, live after the promote
}

func (h *storyHuman) worker() string { return workerName(h.domain) }

// TestTypeScriptSDKWholeStory runs the provisioning story of `make demo`
// for two humans side by side in one sandbox, each through the official
// TypeScript SDK client over Streamable HTTP (2025-11-25, so the server
// bridges elicitation/create) with a task token of their own. The client's
// elicitation handler plays the human: it completes the URL-mode gates of
// billing_setup (Stripe Checkout) and, for alice, whose e-mail has a
// Cloudflare account in the fake, account_connect's OAuth consent, by
// signing in on the approvals page and submitting the fixture pages; it
// accepts the terms gate under which an account is created for bob, who
// has none; and it approves the form gates of deploy_promote and
// subscription_start. Then each agent tries every zone and Worker tool on
// the other human's domain and Worker, with a token naming them: refused,
// and neither sees the other's zone, Worker or spend.
func TestTypeScriptSDKWholeStory(t *testing.T) {
	tsClient(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	alice := &storyHuman{email: "alice@example.com", domain: "ts-story.com", record: "192.0.2.10", subscribe: true,
		connected: "linked", spent: map[string]int64{"cloudflare": 1117, "stripe": 900}} // .com 11.17, starter 9.00
	bob := &storyHuman{email: "bob@example.com", domain: "bob-story.org", record: "192.0.2.20",
		connected: "created", spent: map[string]int64{"cloudflare": 1013, "stripe": 0}} // .org 10.13
	humans := []*storyHuman{alice, bob}
	for _, h := range humans {
		tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Email: h.email, Scope: storyScopes, Details: storyDetails(h.domain)})
		h.args = []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}
	}
	// each runs part for every human at once and returns when all are done.
	each := func(part string, run func(t *testing.T, h *storyHuman)) {
		t.Helper()
		ok := t.Run(part, func(t *testing.T) {
			for _, h := range humans {
				t.Run(strings.Split(h.email, "@")[0], func(t *testing.T) {
					t.Parallel()
					run(t, h)
				})
			}
		})
		if !ok {
			t.FailNow()
		}
	}

	each("provision", storyProvision)
	if alice.account == bob.account {
		t.Fatalf("alice and bob were linked to one Cloudflare account %s", alice.account)
	}
	each("go live", storyGoLive)
	each("cross-tenant", func(t *testing.T, h *storyHuman) {
		victim := alice
		if h == alice {
			victim = bob
		}
		storyTrespass(t, srv.URL, h, victim)
	})
	each("nothing leaked", storyOwnOnly)

	// Each Worker lives in its human's account alone, and the fake charged
	// each account what spend_status shows its human.
	scripts := scriptsByAccount(t, srv.URL)
	if len(scripts) != len(humans) {
		t.Errorf("Workers in %d accounts, want %d (alice's, bob's): %v", len(scripts), len(humans), scripts)
	}
	for _, h := range humans {
		live := liveScripts(t, srv.URL, h.account)
		if live[h.worker()] != h.sha {
			t.Errorf("%s: production %s in account %s is %q, want the preview's sha256 %q", h.email, h.worker(), h.account, live[h.worker()], h.sha)
		}
		for name := range live {
			if name != h.worker() && !strings.HasPrefix(name, h.worker()+"---preview-") {
				t.Errorf("%s's account %s holds a Worker %q that is not %s or one of its previews", h.email, h.account, name, h.worker())
			}
		}
		if _, total := fixtureCharges(t, srv.URL, h.account); total != h.spent["cloudflare"] {
			t.Errorf("the fake charged %s's account %s %d, want %d", h.email, h.account, total, h.spent["cloudflare"])
		}
	}
}

// storyDetails names domain with budgets for both providers.
func storyDetails(domain string) string {
	return fmt.Sprintf(`[{"type":"tollgate:resources","domains":[%q]},`+
		`{"type":"tollgate:spend","provider":"cloudflare","max_amount":"50.00","currency":"usd"},`+
		`{"type":"tollgate:spend","provider":"stripe","max_amount":"50.00","currency":"usd"}]`, domain)
}

// storyProvision is part one: quote, set up billing, connect the account,
// and provision everything up to a preview.
func storyProvision(t *testing.T, h *storyHuman) {
	domain, worker := h.domain, h.worker()
	actions := []map[string]any{
		{"tool": "domain_register", "arguments": map[string]any{"domain": domain}},
		{"tool": "dns_upsert", "arguments": map[string]any{"zone": domain, "type": "A", "name": "www", "content": h.record, "proxied": true}},
		{"tool": "ssl_configure", "arguments": map[string]any{"zone": domain, "mode": "strict"}},
		{"tool": "deploy_promote", "arguments": map[string]any{"name": worker}},
	}
	if h.subscribe {
		actions = append(actions, map[string]any{"tool": "subscription_start", "arguments": map[string]any{"plan": "plan.starter"}})
	}
	steps := []step{
		listTools(),
		callTool("plan_quote", map[string]any{"actions": actions}),
		// The account is the one of the e-mail Stripe verifies: not before.
		callTool("account_connect", nil),
		callTool("billing_setup", nil),
		callTool("account_connect", nil),
		callTool("domain_check", map[string]any{"domain": domain}),
		callTool("domain_register", map[string]any{"domain": domain}),
		callTool("dns_upsert", map[string]any{"zone": domain, "type": "A", "name": "www", "content": h.record, "proxied": true}),
		callTool("ssl_configure", map[string]any{"zone": domain, "mode": "strict", "always_https": true, "min_tls": "1.2"}),
		callTool("api_token_create", map[string]any{"zone": domain, "permissions": []string{"DNS Write"}, "expires_in": 86400, "name": "ts_story_dns"}),
		callTool("deploy_preview", map[string]any{"name": worker, "script": "export default { fetch() { return new Response('hello from " + domain + "') } };\n"}),
	}
	out := runTS(t, tsScript{Elicit: humanPlays(h.email), Steps: steps}, h.args...)
	if out.ProtocolVersion != sdkProtocolVersion {
		t.Errorf("negotiated protocol version %q, want %q", out.ProtocolVersion, sdkProtocolVersion)
	}
	assertRefusal(t, "account_connect before billing_setup", out.Results[2], "billing_required")
	r := map[string]map[string]any{}
	for i, s := range steps {
		if i > 0 && i != 2 {
			r[s.Name] = storyStep(t, s.Name, out.Results[i])
		}
	}
	if fits, _ := r["plan_quote"]["fits"].(bool); !fits {
		t.Errorf("plan_quote: the plan does not fit: %v", r["plan_quote"])
	}
	if m, _ := r["plan_quote"]["missing_scopes"].([]any); len(m) > 0 {
		t.Errorf("plan_quote: missing scopes %v with every scope granted", m)
	}
	wantField(t, "billing_setup", r["billing_setup"], "status", "on_file")
	wantField(t, "account_connect", r["account_connect"], "status", h.connected)
	wantField(t, "account_connect", r["account_connect"], "email", h.email)
	h.account, _ = r["account_connect"]["account_id"].(string)
	if h.account == "" {
		t.Fatalf("account_connect: no account_id: %v", r["account_connect"])
	}
	if av, _ := r["domain_check"]["available"].(bool); !av {
		t.Errorf("domain_check %s: not available: %v", domain, r["domain_check"])
	}
	assertRegistered(t, domain, h.account, r["domain_register"])
	if rec, _ := r["dns_upsert"]["record"].(map[string]any); rec["content"] != h.record {
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
	pv := r["deploy_preview"]
	wantField(t, "deploy_preview", pv, "name", worker)
	wantField(t, "deploy_preview", pv, "domain", domain)
	wantField(t, "deploy_preview", pv, "account_id", h.account)
	h.preview, _ = pv["preview_id"].(string)
	h.sha, _ = pv["sha256"].(string)
	if h.preview == "" || h.sha == "" {
		t.Fatalf("deploy_preview: no preview_id or sha256: %v", pv)
	}
	if p, _ := pv["preview_name"].(string); p != worker+"---preview-"+h.preview {
		t.Errorf("deploy_preview: preview_name %q, want %q", p, worker+"---preview-"+h.preview)
	}

	// Stripe Checkout for both; Cloudflare's consent page only for alice,
	// whose account exists; bob accepts the terms in a form instead.
	completed := map[string]int{}
	terms := 0
	for _, raw := range out.Elicitations {
		var e struct {
			Mode    string `json:"mode"`
			Message string `json:"message"`
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
			if strings.Contains(e.Message, cloudflareTermsURL) {
				terms++
			}
			continue
		}
		if e.URLFlow == nil || e.URLFlow.Error != "" || len(e.URLFlow.Pages) == 0 {
			t.Errorf("URL-mode elicitation %s was not completed: %s", e.URL, raw)
			continue
		}
		last := e.URLFlow.Pages[len(e.URLFlow.Pages)-1]
		switch {
		case strings.Contains(last, "/oauth/callback/cloudflare?"):
			completed["cloudflare"]++
		case strings.Contains(last, "/oauth/callback/stripe?"):
			completed["stripe"]++
		default:
			t.Errorf("URL flow %s did not end at tollgate's callback: %s", e.URL, last)
		}
		t.Logf("%s completed %s:\n  %s", h.email, e.URL, strings.Join(e.URLFlow.Pages, "\n  "))
	}
	wantURL, wantTerms := map[string]int{"stripe": 1, "cloudflare": 1}, 0
	if h.connected == "created" {
		wantURL, wantTerms = map[string]int{"stripe": 1}, 1
	}
	if fmt.Sprint(completed) != fmt.Sprint(wantURL) || terms != wantTerms {
		t.Errorf("%s: URL flows completed %v and %d terms gates, want %v and %d: %s", h.email, completed, terms, wantURL, wantTerms, out.Elicitations)
	}
}

// cloudflareTermsURL is where the sandbox's fake Cloudflare publishes its
// terms; the terms gate shows it.
const cloudflareTermsURL = "https://www.cloudflare.com/terms/"

// storyGoLive is part two: go live and, for alice, subscribe.
func storyGoLive(t *testing.T, h *storyHuman) {
	steps := []step{
		listTools(),
		callTool("deploy_promote", map[string]any{"name": h.worker(), "preview_id": h.preview}),
	}
	if h.subscribe {
		steps = append(steps, callTool("subscription_start", map[string]any{"plan": "plan.starter"}))
	}
	out := runTS(t, tsScript{Elicit: humanPlays(h.email), Steps: steps}, h.args...)
	promote := storyStep(t, "deploy_promote", out.Results[1])
	if promote["preview_id"] != h.preview || promote["sha256"] != h.sha {
		t.Errorf("deploy_promote: live is %v (%v), want preview %s (%s)", promote["preview_id"], promote["sha256"], h.preview, h.sha)
	}
	wantField(t, "deploy_promote", promote, "domain", h.domain)
	wantField(t, "deploy_promote", promote, "account_id", h.account)
	if h.subscribe {
		sub := storyStep(t, "subscription_start", out.Results[2])
		wantField(t, "subscription_start", sub, "status", "active")
		if p, _ := sub["plan"].(string); !strings.Contains(p, "starter") {
			t.Errorf("subscription_start: plan %q, want the starter plan: %v", p, sub)
		}
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
	// deploy_promote, and subscription_start when there is one.
	if want := len(steps) - 1; forms != want || len(out.Elicitations) != want {
		t.Errorf("%d elicitations (%d forms), want %d form gates: %s", len(out.Elicitations), forms, want, out.Elicitations)
	}
}

// storyTrespass: h's agent, with a task token naming victim's domain,
// tries every zone and Worker tool on victim's zone and Worker. Each is
// refused before any human is asked: the zone is not one of h's account,
// and the domain is taken.
func storyTrespass(t *testing.T, base string, h, victim *storyHuman) {
	tok := testkit.TaskToken(t, base, testkit.Grant{Email: h.email, Agent: "trespasser", Scope: storyScopes, Details: storyDetails(victim.domain)})
	zone, worker := victim.domain, victim.worker()
	attempts := []struct {
		step step
		code string
	}{
		{callTool("dns_list", map[string]any{"zone": zone}), "resource_forbidden"},
		{callTool("dns_upsert", map[string]any{"zone": zone, "type": "A", "name": "www", "content": "192.0.2.66", "proxied": true}), "resource_forbidden"},
		{callTool("ssl_configure", map[string]any{"zone": zone, "mode": "off"}), "resource_forbidden"},
		{callTool("api_token_create", map[string]any{"zone": zone, "permissions": []string{"DNS Write"}, "expires_in": 3600, "name": "trespass"}), "resource_forbidden"},
		{callTool("deploy_preview", map[string]any{"name": worker, "script": "export default { fetch() { return new Response('mine now') } };\n"}), "resource_forbidden"},
		{callTool("deploy_promote", map[string]any{"name": worker, "preview_id": victim.preview}), "resource_forbidden"},
		{callTool("domain_register", map[string]any{"domain": zone}), "domain_unavailable"},
	}
	steps := []step{listTools()}
	for _, a := range attempts {
		steps = append(steps, a.step)
	}
	out := runTS(t, tsScript{Elicit: humanPlays(h.email), Steps: steps}, "--http", base+"/mcp", "--header", "Authorization: Bearer "+tok)
	for i, a := range attempts {
		assertRefusal(t, fmt.Sprintf("%s's agent: %s on %s's %s", h.email, a.step.Name, victim.email, zone), out.Results[i+1], a.code)
	}
	if len(out.Elicitations) != 0 {
		t.Errorf("%s was asked about another human's objects: %s", h.email, out.Elicitations)
	}
}

// storyOwnOnly: each human's zone holds only their own record, and
// spend_status shows each only what they spent.
func storyOwnOnly(t *testing.T, h *storyHuman) {
	out := runTS(t, []step{
		listTools(),
		callTool("dns_list", map[string]any{"zone": h.domain}),
		callTool("spend_status", map[string]any{}),
	}, h.args...)
	var list struct {
		Records []struct {
			Type    string `json:"type"`
			Content string `json:"content"`
		} `json:"records"`
	}
	b, _ := json.Marshal(storyStep(t, "dns_list", out.Results[1]))
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("dns_list: %s: %v", b, err)
	}
	var a []string
	for _, r := range list.Records {
		if r.Type == "A" {
			a = append(a, r.Content)
		}
	}
	if len(a) != 1 || a[0] != h.record {
		t.Errorf("%s's zone %s has A records %v, want only %s: %s", h.email, h.domain, a, h.record, b)
	}
	wantSpent(t, h.email+"'s spend_status", spendOf(t, "spend_status", out.Results[2]), h.spent)
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
