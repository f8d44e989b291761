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
	mcp       *client.Client
	human     *human
	sessionID string
	// childSession is the deployer's session, a child of sessionID.
	childSession string
	domain       string
	worker       string // the Worker serving domain, named by its encoding
	suffix       string
	// account is the human's own Cloudflare account, as account_connect
	// linked or created it; every Cloudflare call must act in it.
	account   string
	taskToken string
}

func run() {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	// Short enough that the Worker's preview name needs no shortening:
	// demo--<6 hex>-com---preview-<32 hex> is 59 of Cloudflare's 63.
	domain := "demo-" + suffix + ".com"
	s := &story{domain: domain, worker: workerName(domain), suffix: suffix}
	if *redisURL == "" {
		*redisURL = sandboxRedis()
	}
	email, why := chooseHuman(suffix)
	s.human = &human{email: email}
	fmt.Printf("tollgate demo — a scripted agent takes %s to production against %s\n", s.domain, *issuer)
	fmt.Printf("the human: %s (%s)\n", email, why)

	s.identity()
	s.connect()
	s.quote()
	s.billing()
	s.accountConnect()
	s.provision()
	s.renewal() // before the sub-agent: it spends from the same session
	s.subAgent()
	s.audit()
	fmt.Printf("\n✓ demo complete: %s registered, configured and live in %s's Cloudflare account %s; every step above is in the audit trail of session %s\n",
		s.domain, email, s.account, s.sessionID)
}

func (s *story) identity() {
	step("dev login: the human signs in (sandbox IdP)")
	user, err := devToken("/dev/login", url.Values{"email": {s.human.email}})
	if err != nil {
		fail("dev login", err)
	}
	say("%s got a user token (%d bytes)", s.human.email, len(user))

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
	var names []string
	for _, t := range lt.Tools {
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
		{"tool": "deploy_promote", "arguments": map[string]any{"name": s.worker}},
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
	if fits, _ := out["fits"].(bool); !fits {
		stop("plan_quote", "the plan does not fit: "+strings.Join(notFitting(out), "; ")+
			". Nothing was bought. Run the demo again as a fresh user (the default), or pick another with --user; "+
			"an operator raises this user's cap with tollgate spend cap set --principal user:EMAIL --provider PROVIDER AMOUNT")
	}
}

// notFitting says why plan_quote's plan does not fit, per provider.
func notFitting(out map[string]any) []string {
	var why []string
	for _, p := range list(out["providers"]) {
		if f, ok := p["fits_cap"].(bool); ok && !f {
			why = append(why, fmt.Sprintf("%v needs %s, and %s is left under this month's cap", p["provider"], money(p["total"]), money(p["remaining"])))
		}
		if f, ok := p["fits_task_budget"].(bool); ok && !f {
			why = append(why, fmt.Sprintf("%v needs %s, and the task budget has %s left", p["provider"], money(p["total"]), money(p["task_budget_remaining"])))
		}
	}
	if m := strs(out["missing_scopes"]); len(m) > 0 {
		why = append(why, "the task token lacks "+strings.Join(m, ", "))
	}
	if len(why) == 0 {
		why = append(why, "plan_quote says so")
	}
	return why
}
