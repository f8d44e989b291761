// Command tollgate-demo is `make demo`: a scripted agent that runs the whole
// provisioning story against a sandbox tollgate (`make run`) and narrates it:
// each step, each human gate (what the human was shown and what it
// answered), each hold and charge, and at the end the audit tree of the task
// session, naming the human and each agent.
//
//	go run ./cmd/tollgate-demo [--issuer http://127.0.0.1:7420] [--redis-url redis://…]
//
// It exits 1 naming the step when a step that should succeed fails.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

const (
	humanEmail = "alice@example.com"
	agentName  = "planner"
	scopes     = "catalog:read domain:read domain:register dns:read dns:write ssl:write token:create " +
		"deploy:preview deploy:production subscription:create spend:read account:link billing:setup"
)

var (
	issuer   = flag.String("issuer", envOr("TOLLGATE_ISSUER", "http://127.0.0.1:7420"), "the sandbox tollgate's base URL")
	redisURL = flag.String("redis-url", os.Getenv("TOLLGATE_REDIS_URL"), "the sandbox's Redis (printed by tollgate serve), for the audit step; env TOLLGATE_REDIS_URL")
	bin      = flag.String("tollgate", "bin/tollgate", "the tollgate binary for the audit step (falls back to go run ./cmd/tollgate)")
	probe    = flag.Bool("probe", false, "only check whether the sandbox answers on /healthz (exit 0) or not (exit 1)")
	wait     = flag.Duration("wait", 0, "only wait up to this long for /healthz to answer, then exit")
	noElicit = flag.Bool("no-elicit", false, "connect as a client without elicitation: gates come back as approval_required and the human approves on the approvals page")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	flag.Parse()
	*issuer = strings.TrimRight(*issuer, "/")
	switch {
	case *probe:
		if !healthy() {
			os.Exit(1)
		}
		return
	case *wait > 0:
		deadline := time.Now().Add(*wait)
		for !healthy() {
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "tollgate-demo: %s/healthz did not answer within %s\n", *issuer, *wait)
				os.Exit(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return
	}
	if !healthy() {
		fail("preflight", fmt.Errorf("nothing answers on %s/healthz: start the sandbox with `make run` (or run `make demo`, which starts one)", *issuer))
	}
	run()
}

func healthy() bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(*issuer + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// ---- narration ----

var stepNo int

func step(title string) {
	stepNo++
	fmt.Printf("\n━━ %d. %s\n", stepNo, title)
}

func say(format string, a ...any) { fmt.Printf("   "+format+"\n", a...) }

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func fail(at string, err error) {
	fmt.Fprintf(os.Stderr, "\n✗ demo failed at %q: %v\n", at, err)
	os.Exit(1)
}

func money(v any) string {
	m, _ := v.(map[string]any)
	if d, ok := m["display"].(string); ok {
		return d
	}
	if m == nil {
		return "-"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// ---- the story ----

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

func (s *story) audit() {
	step("tollgate audit show --session " + s.sessionID)
	if *redisURL == "" {
		// A `make run` sandbox tells loopback callers its embedded Redis.
		if resp, err := http.Get(*issuer + "/dev/redis"); err == nil {
			var body struct {
				URL string `json:"url"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			*redisURL = body.URL
		}
	}
	if *redisURL == "" {
		say("skipped: pass the sandbox's Redis URL (the `redis` line tollgate serve prints) with")
		say("  --redis-url redis://127.0.0.1:PORT  or  TOLLGATE_REDIS_URL=redis://127.0.0.1:PORT")
		return
	}
	args := []string{"audit", "show", "--session", s.sessionID, "--redis-url", *redisURL}
	var cmd *exec.Cmd
	if _, err := os.Stat(*bin); err == nil {
		cmd = exec.Command(*bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", "./cmd/tollgate"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	fmt.Println(indent(string(out), "   "))
	if err != nil {
		fail("audit show", fmt.Errorf("%s: %v", strings.Join(cmd.Args, " "), err))
	}
	for _, want := range []string{humanEmail, agentName} {
		if !strings.Contains(string(out), want) {
			fail("audit show", fmt.Errorf("the audit tree does not name %q", want))
		}
	}
}

// ---- tool calls ----

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
		if berr := browse(u); berr != nil {
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

// ---- the human ----

// human plays the person at the gates: it prints what it was shown,
// approves form gates and completes URL-mode gates in the sandbox's pages.
type human struct{ asked atomic.Int32 }

func (h *human) Elicit(_ context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.asked.Add(1)
	p := r.Params
	fmt.Printf("   ┌ gate (%s mode) — the human is shown:\n%s\n", orDefault(p.Mode, "form"), indent(p.Message, "   │ "))
	if p.Mode == mcp.ElicitationModeURL {
		fmt.Printf("   │ URL: %s\n", p.URL)
		if err := browse(p.URL); err != nil {
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

// ---- a scripted browser for URL-mode gates ----

var (
	reForm   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	reAttr   = regexp.MustCompile(`(?is)\b(action|method|name|value|type|href)\s*=\s*"([^"]*)"`)
	reInput  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	reButton = regexp.MustCompile(`(?is)<button\b([^>]*)>(.*?)</button>`)
	reLink   = regexp.MustCompile(`(?is)<a\b([^>]*)>(.*?)</a>`)
	reTag    = regexp.MustCompile(`(?s)<[^>]*>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range reAttr.FindAllStringSubmatch(s, -1) {
		k := strings.ToLower(a[1])
		if _, seen := m[k]; !seen {
			m[k] = html.UnescapeString(a[2])
		}
	}
	return m
}

// browse signs in on the approvals page as the human, opens u, and goes
// through its pages: approve, continue, submit the one form, following
// redirects, until a page asks nothing more.
func browse(u string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	// Sign in.
	body, _, err := get(c, *issuer+"/approvals/login")
	if err != nil {
		return fmt.Errorf("sign-in page: %w", err)
	}
	var csrf string
	for _, in := range reInput.FindAllString(body, -1) {
		if a := attrs(in); a["name"] == "csrf" {
			csrf = a["value"]
			break
		}
	}
	resp, err := c.PostForm(*issuer+"/approvals/login", url.Values{"csrf": {csrf}, "email": {humanEmail}, "next": {"/approvals"}})
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("sign in: status %d", resp.StatusCode)
	}
	say("│ the human signs in on %s/approvals/login as %s", *issuer, humanEmail)

	body, at, err := get(c, u)
	if err != nil {
		return err
	}
	visited := map[string]bool{}
	for i := 0; i < 8; i++ {
		next, method, form, label := nextAction(body, at)
		if next == "" {
			say("│ done at %s", at)
			return nil
		}
		key := method + " " + next + " " + form.Encode()
		if visited[key] {
			return fmt.Errorf("the page at %s loops", at)
		}
		visited[key] = true
		say("│ at %s: %s", at, label)
		if method == "GET" {
			body, at, err = get(c, next)
		} else {
			body, at, err = post(c, next, form)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("too many pages after %s", u)
}

// nextAction picks what a human would press on a page: Approve, a Continue
// button or link, or the page's one form.
func nextAction(body, at string) (target, method string, form url.Values, label string) {
	base, _ := url.Parse(at)
	resolve := func(ref string) string {
		if ref == "" {
			return at
		}
		r, err := url.Parse(ref)
		if err != nil {
			return at
		}
		return base.ResolveReference(r).String()
	}
	type cand struct {
		action, method, label string
		form                  url.Values
	}
	var forms []cand
	for _, f := range reForm.FindAllStringSubmatch(body, -1) {
		fa := attrs(f[1])
		if strings.Contains(fa["action"], "logout") {
			continue
		}
		vals := url.Values{}
		for _, in := range reInput.FindAllString(f[2], -1) {
			a := attrs(in)
			if a["name"] == "" || a["type"] == "submit" || ((a["type"] == "checkbox" || a["type"] == "radio") && !strings.Contains(strings.ToLower(in), "checked")) {
				if a["type"] == "checkbox" && a["name"] != "" {
					v := a["value"]
					if v == "" {
						v = "on"
					}
					vals.Set(a["name"], v) // a consenting human ticks the box
				}
				continue
			}
			vals.Set(a["name"], a["value"])
		}
		m := strings.ToUpper(orDefault(fa["method"], "GET"))
		label := "submits the form"
		for _, bt := range reButton.FindAllStringSubmatch(f[2], -1) {
			ba := attrs(bt[1])
			text := strings.TrimSpace(reTag.ReplaceAllString(bt[2], ""))
			if ba["name"] == "decision" && ba["value"] != "approve" {
				continue
			}
			if ba["name"] != "" {
				vals.Set(ba["name"], ba["value"])
			}
			label = fmt.Sprintf("presses %q", text)
			break
		}
		forms = append(forms, cand{resolve(fa["action"]), m, label, vals})
	}
	for _, f := range forms {
		if f.form.Get("decision") == "approve" {
			return f.action, f.method, f.form, f.label
		}
	}
	for _, l := range reLink.FindAllStringSubmatch(body, -1) {
		text := strings.TrimSpace(reTag.ReplaceAllString(l[2], ""))
		if strings.Contains(strings.ToLower(text), "continue") {
			return resolve(attrs(l[1])["href"]), "GET", nil, fmt.Sprintf("follows %q", text)
		}
	}
	for _, f := range forms {
		if strings.Contains(strings.ToLower(f.label), "continue") {
			return f.action, f.method, f.form, f.label
		}
	}
	if len(forms) == 1 && !strings.HasSuffix(forms[0].action, "/approvals/login") {
		return forms[0].action, forms[0].method, forms[0].form, forms[0].label
	}
	return "", "", nil, ""
}

func get(c *http.Client, u string) (string, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", u, err
	}
	return read(resp)
}

func post(c *http.Client, u string, form url.Values) (string, string, error) {
	resp, err := c.PostForm(u, form)
	if err != nil {
		return "", u, err
	}
	return read(resp)
}

func read(resp *http.Response) (string, string, error) {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	at := resp.Request.URL.String()
	if resp.StatusCode >= 400 {
		return string(b), at, fmt.Errorf("%s: status %d: %s", at, resp.StatusCode, firstLine(reTag.ReplaceAllString(string(b), " ")))
	}
	return string(b), at, nil
}

func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
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
