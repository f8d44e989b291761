package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

type story struct {
	mcp        *client.Client
	human      *human
	sessionID  string
	domain     string
	suffix     string
	billingOK  bool
	toolsThere map[string]bool
	taskToken  string
}

func run() {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	s := &story{domain: "demo-shop-" + suffix + ".com", suffix: suffix}
	fmt.Printf("tollgate demo — a scripted agent takes %s to production against %s\n", s.domain, *issuer)

	s.identity()
	s.connect()
	s.quote()
	s.accountAndBilling()
	s.provision()
	s.subAgent()
	s.audit()
	fmt.Printf("\n✓ demo complete: %s registered, configured and live; every step above is in the audit trail of session %s\n", s.domain, s.sessionID)
}

func (s *story) identity() {
	step("dev login: the human signs in (sandbox IdP)")
	user, err := devToken("/dev/login", url.Values{"email": {humanEmail}})
	if err != nil {
		fail("dev login", err)
	}
	say("%s got a user token (%d bytes)", humanEmail, len(user))

	step("agent attestation: the agent proves what it is")
	agent, err := devToken("/dev/agent-token", url.Values{"name": {agentName}})
	if err != nil {
		fail("agent attestation", err)
	}
	say("agent %q got an attestation (%d bytes)", agentName, len(agent))

	step("token exchange (RFC 8693): a short-lived task token for one domain and a budget")
	details := fmt.Sprintf(`[{"type":"tollgate:resources","domains":[%q]},`+
		`{"type":"tollgate:spend","provider":"cloudflare","max_amount":"50.00","currency":"usd"},`+
		`{"type":"tollgate:spend","provider":"stripe","max_amount":"50.00","currency":"usd"}]`, s.domain)
	form := url.Values{
		"grant_type":            {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":         {user},
		"subject_token_type":    {"urn:ietf:params:oauth:token-type:id_token"},
		"actor_token":           {agent},
		"actor_token_type":      {"urn:ietf:params:oauth:token-type:jwt"},
		"scope":                 {scopes},
		"authorization_details": {details},
	}
	say("asked for scope: %s", scopes)
	say("resources: %s only; budget: cloudflare 50.00 USD, stripe 50.00 USD", s.domain)
	resp, err := http.PostForm(*issuer+"/oauth/token", form)
	if err != nil {
		fail("token exchange", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		fail("token exchange", fmt.Errorf("status %d: %v", resp.StatusCode, body))
	}
	s.sessionID, _ = body["session_id"].(string)
	s.taskToken = tok
	say("granted scope: %v", body["scope"])
	say("task session:  %s (token expires in %vs)", s.sessionID, body["expires_in"])
	s.human = &human{}
	s.mcpToken(tok)
}

func (s *story) mcpToken(tok string) {
	tr, err := transport.NewStreamableHTTP(*issuer+"/mcp",
		transport.WithHTTPTimeout(90*time.Second),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		fail("connect", err)
	}
	caps := mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}}
	if *noElicit {
		s.mcp = client.NewClient(tr)
		return
	}
	s.mcp = client.NewClient(tr, client.WithElicitationHandler(s.human), client.WithClientCapabilities(caps))
}

func (s *story) connect() {
	step("the agent connects to " + *issuer + "/mcp (Streamable HTTP, Bearer task token)")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.mcp.Start(context.Background()); err != nil {
		fail("connect", err)
	}
	s.mcp.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			if m, ok := n.Params.AdditionalFields["message"].(string); ok && m != "" {
				say("  … %s", m)
			}
		}
	})
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "tollgate-demo", Version: "0"}
	if _, err := s.mcp.Initialize(ctx, req); err != nil {
		fail("initialize", err)
	}
	lt, err := s.mcp.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		fail("tools/list", err)
	}
	s.toolsThere = map[string]bool{}
	var names []string
	for _, t := range lt.Tools {
		s.toolsThere[t.Name] = true
		names = append(names, t.Name)
	}
	slices.Sort(names)
	say("tools: %s", strings.Join(names, ", "))
}

func (s *story) quote() {
	step("plan_quote: what the plan costs, which gates it asks, whether it fits")
	actions := []map[string]any{
		{"tool": "domain_register", "arguments": map[string]any{"domain": s.domain}},
		{"tool": "dns_upsert", "arguments": map[string]any{"zone": s.domain, "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true}},
		{"tool": "ssl_configure", "arguments": map[string]any{"zone": s.domain, "mode": "strict"}},
		{"tool": "deploy_promote", "arguments": map[string]any{"name": "demo-shop-" + s.suffix}},
		{"tool": "subscription_start", "arguments": map[string]any{"plan": "plan.starter"}},
	}
	out := s.must("plan_quote", map[string]any{"actions": actions})
	for _, a := range list(out["actions"]) {
		line := fmt.Sprintf("%-18s", a["tool"])
		if a["cost"] != nil {
			line += " " + money(a["cost"])
		} else {
			line += " no charge"
		}
		if it, _ := a["item"].(string); it != "" {
			line += " — " + it
		}
		if g := strs(a["gates"]); len(g) > 0 {
			line += "  [gates: " + strings.Join(g, ", ") + "]"
		}
		say("%s", line)
	}
	for _, p := range list(out["providers"]) {
		line := fmt.Sprintf("total %-10s %s (left under the monthly cap: %s, fits: %v)", p["provider"], money(p["total"]), money(p["remaining"]), p["fits_cap"])
		if p["task_budget_remaining"] != nil {
			line += fmt.Sprintf("; task budget left %s, fits: %v", money(p["task_budget_remaining"]), p["fits_task_budget"])
		}
		say("%s", line)
	}
	say("gates the human will be asked: %s", strings.Join(strs(out["gates"]), ", "))
	if m := strs(out["missing_scopes"]); len(m) > 0 {
		say("scopes this token lacks: %s", strings.Join(m, ", "))
	}
	say("the whole plan fits: %v", out["fits"])
}

func (s *story) accountAndBilling() {
	step("account_connect: link or create the human's Cloudflare account")
	if !s.toolsThere["account_connect"] {
		say("skipped: this server does not list account_connect yet")
	} else if out, err := s.call("account_connect", map[string]any{}); err != nil {
		say("✗ account_connect did not succeed: %v (continuing)", err)
	} else {
		say("result: %s", compact(out))
	}

	step("billing_setup: a payment method through Stripe Checkout (no card ever reaches the agent)")
	if !s.toolsThere["billing_setup"] {
		say("skipped: this server does not list billing_setup yet")
	} else if out, err := s.call("billing_setup", map[string]any{}); err != nil {
		say("✗ billing_setup did not succeed: %v (continuing)", err)
	} else {
		s.billingOK = true
		say("result: %s", compact(out))
	}
}

func (s *story) provision() {
	step("domain_check " + s.domain)
	chk := s.must("domain_check", map[string]any{"domain": s.domain})
	say("available: %v, price %s (renews at %s), min %v year(s)", chk["available"], money(chk["price"]), money(chk["renewal_price"]), chk["min_years"])
	if av, _ := chk["available"].(bool); !av {
		fail("domain_check", fmt.Errorf("%s is not available: %v", s.domain, chk["reason"]))
	}

	step("domain_register " + s.domain)
	say("hold: %s placed against the cloudflare cap and the task budget before Cloudflare is called", money(chk["price"]))
	reg := s.must("domain_register", map[string]any{"domain": s.domain})
	say("charge: %s committed — %s %v for %v year(s), registration %v", money(reg["charged"]), reg["domain"], reg["status"], reg["years"], reg["registration_id"])

	step("dns_upsert: A www → 192.0.2.10, proxied")
	dns := s.must("dns_upsert", map[string]any{"zone": s.domain, "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true})
	rec, _ := dns["record"].(map[string]any)
	say("record %v %v → %v (proxied %v, id %v), created: %v", rec["type"], rec["name"], rec["content"], rec["proxied"], rec["id"], dns["created"])

	step("ssl_configure: strict, always HTTPS, TLS 1.2 minimum")
	ssl := s.must("ssl_configure", map[string]any{"zone": s.domain, "mode": "strict", "always_https": true, "min_tls": "1.2"})
	say("zone %v: mode %v, always_https %v, min_tls %v", ssl["zone"], ssl["mode"], ssl["always_https"], ssl["min_tls"])

	step("api_token_create: a Cloudflare token for DNS Write on this zone, 1 day")
	tk := s.must("api_token_create", map[string]any{"zone": s.domain, "permissions": []string{"DNS Write"}, "expires_in": 86400, "name": "demo_dns_" + s.suffix})
	say("token %v on %v, permissions %v, expires %v", tk["token_id"], tk["zone"], tk["permissions"], tk["expires_at"])
	say("its secret was stored server-side as %q — never shown to the agent or logged", tk["secret_stored_as"])

	worker := "demo-shop-" + s.suffix
	script := "export default {\n  fetch() { return new Response('hello from " + s.domain + "'); }\n};\n"
	step("deploy_preview: upload the Worker " + worker + " under a preview name")
	pv := s.must("deploy_preview", map[string]any{"name": worker, "script": script})
	say("preview %v (%v bytes, sha256 %.12s…) at %v", pv["preview_name"], pv["size"], pv["sha256"], pv["url"])

	step("deploy_promote: go live — the human is asked first")
	before := s.human.asked.Load()
	pr := s.must("deploy_promote", map[string]any{"name": worker, "preview_id": pv["preview_id"]})
	if s.human.asked.Load() == before && !*noElicit {
		say("(no production gate was asked)")
	}
	say("live: %v is now preview %v (sha256 %.12s…, %v bytes)", pr["name"], pr["preview_id"], pr["sha256"], pr["size"])

	step("subscription_start plan.starter")
	if !s.billingOK {
		say("skipped: it needs a payment method on file and billing_setup did not run")
	} else {
		say("the purchase gate asks the human; then the first period's price is held against the stripe cap and the task budget")
		sub := s.must("subscription_start", map[string]any{"plan": "plan.starter"})
		say("subscription %v to %v: %v, %s per %v (held first, then charged)", sub["subscription_id"], sub["plan"], sub["status"], money(sub["amount"]), sub["interval"])
	}

	step("spend_status: what this month cost and what is left")
	st := s.must("spend_status", map[string]any{})
	say("principal %v", st["principal"])
	for _, p := range list(st["providers"]) {
		line := fmt.Sprintf("%-10s %v: spent %s, held %s, cap %s, remaining %s", p["provider"], p["month"], money(p["spent"]), money(p["held"]), money(p["cap"]), money(p["remaining"]))
		if p["task_budget"] != nil {
			line += fmt.Sprintf("; task budget %s, left %s", money(p["task_budget"]), money(p["task_budget_remaining"]))
		}
		say("%s", line)
	}
}

// subAgent hands a follow-up deployment to a second agent: the planner's
// task token is exchanged again, narrower, for a "deployer" agent, so the
// audit tree shows the human, the planner and the deployer.
func (s *story) subAgent() {
	step("sub-agent: the planner hands a follow-up deployment to a deployer agent (a second exchange)")
	agent, err := devToken("/dev/agent-token", url.Values{"name": {"deployer"}})
	if err != nil {
		fail("deployer attestation", err)
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {s.taskToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"actor_token":        {agent},
		"actor_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"scope":              {"deploy:preview deploy:production"},
	}
	resp, err := http.PostForm(*issuer+"/oauth/token", form)
	if err != nil {
		fail("sub-agent exchange", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		fail("sub-agent exchange", fmt.Errorf("status %d: %v", resp.StatusCode, body))
	}
	say("chain: %s → %s → deployer; scope narrowed to %v; session %v (child of %s)", humanEmail, agentName, body["scope"], body["session_id"], s.sessionID)
	s.mcpToken(tok)
	s.connect()
	worker := "demo-shop-" + s.suffix
	script := "export default {\n  fetch() { return new Response('hello again from " + s.domain + "'); }\n};\n"
	pv := s.must("deploy_preview", map[string]any{"name": worker, "script": script})
	say("deployer previewed %v", pv["preview_name"])
	pr := s.must("deploy_promote", map[string]any{"name": worker, "preview_id": pv["preview_id"]})
	say("deployer promoted: %v now runs sha256 %.12s… (was %.12s…)", pr["name"], pr["sha256"], pr["previous_sha256"])
}

// ---- dev identity ----

func devToken(path string, form url.Values) (string, error) {
	resp, err := http.PostForm(*issuer+path, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Token == "" {
		return "", fmt.Errorf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	return body.Token, nil
}
