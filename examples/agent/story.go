package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/agent"
)

type story struct {
	o      options
	out    io.Writer
	human  *terminal
	email  string
	domain string
	worker string
	step   int
}

func newStory(o options, stdin io.Reader, stdout io.Writer) *story {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	s := &story{o: o, out: stdout, human: &terminal{in: bufio.NewReader(stdin), out: stdout, yes: o.yes},
		email: o.human, domain: o.domain}
	if s.email == "" {
		s.email = "agent-example-" + suffix + "@example.com"
	}
	if s.domain == "" {
		s.domain = "agent-" + suffix + ".com"
	}
	// The Worker serving a domain is named by tollgate's encoding
	// (docs/tenancy.md): each '-' doubled, then each '.' a '-'.
	s.worker = strings.ReplaceAll(strings.ReplaceAll(s.domain, "-", "--"), ".", "-")
	return s
}

func (s *story) title(t string) {
	s.step++
	fmt.Fprintf(s.out, "\n%d. %s\n", s.step, t)
}

func (s *story) say(format string, a ...any) { fmt.Fprintf(s.out, "   "+format+"\n", a...) }

func (s *story) run(ctx context.Context) error {
	fmt.Fprintf(s.out, "a Go agent on tollgate's agent SDK, against %s\nthe human: %s; the domain: %s\n", s.o.url, s.email, s.domain)

	s.title("the human signs in (sandbox dev IdP) and links their Cloudflare account")
	human := agent.DevLogin(s.o.url, s.email, nil)
	if _, err := human.Token(); err != nil {
		return fmt.Errorf("is %s a sandbox tollgate? start one with `make run`\n  %w", s.o.url, err)
	}
	acct, err := linkCloudflare(ctx, s.o.url, s.email)
	if err != nil {
		return fmt.Errorf("link the Cloudflare account: %w", err)
	}
	s.say("signed in; Cloudflare account %s linked (the sandbox's shortcut for account_connect's consent page)", acct)

	s.title("the planner exchanges its attestation and the human's token for a task token")
	planner, err := agent.New(agent.Config{
		Issuer:      s.o.url,
		Actor:       agent.DevAttestor(s.o.url, "planner", nil),
		Subject:     human,
		Scope:       []string{"catalog:read", "domain:read", "domain:register", "deploy:preview", "deploy:production", "spend:read"},
		Resources:   []string{s.domain},
		Budgets:     []agent.Budget{{Provider: "cloudflare", Amount: "25.00", Currency: "usd"}},
		Description: "example agent: register " + s.domain + " and deploy it",
	})
	if err != nil {
		return err
	}
	tok, err := planner.TokenContext(ctx)
	if err != nil {
		return fmt.Errorf("token exchange: %w", err)
	}
	g := agent.GrantOf(tok)
	s.say("task session %s: scope %s; only %s; cloudflare budget 25.00 USD; expires %s", g.SessionID, strings.Join(g.Scope, " "), s.domain, g.Expiry.Format(time.TimeOnly))
	// Whatever happens next, the task ends with this run: its session,
	// and the deployer's with it, are revoked.
	revoked := false
	defer func() {
		if !revoked {
			_ = planner.Revoke(context.WithoutCancel(ctx))
		}
	}()
	mc, err := s.connect(ctx, planner)
	if err != nil {
		return err
	}
	defer mc.Close()

	s.title("plan_quote: what the plan costs, which gates it asks, whether it fits")
	q, err := call(ctx, mc, "plan_quote", map[string]any{"actions": []map[string]any{
		{"tool": "domain_register", "arguments": map[string]any{"domain": s.domain}},
		{"tool": "deploy_preview", "arguments": map[string]any{"name": s.worker, "script": "export default {}"}},
		{"tool": "deploy_promote", "arguments": map[string]any{"name": s.worker}},
	}})
	if err != nil {
		return fmt.Errorf("plan_quote: %w", err)
	}
	for _, a := range list(q["actions"]) {
		cost := "no charge"
		if a["cost"] != nil {
			cost = display(a["cost"])
		}
		s.say("%-16s %s  gates: %s", a["tool"], cost, orNone(strs(a["gates"])))
	}
	if fits, _ := q["fits"].(bool); !fits {
		return fmt.Errorf("plan_quote: the plan does not fit the monthly cap or the task budget: %s", compact(q["providers"]))
	}
	s.say("the plan fits the human's monthly cap and the task budget")

	s.title("domain_register " + s.domain)
	reg, err := call(ctx, mc, "domain_register", map[string]any{"domain": s.domain})
	if err != nil {
		return fmt.Errorf("domain_register: %w", err)
	}
	s.say("%v: %v for %v year(s), charged %s in account %v", reg["domain"], reg["status"], reg["years"], display(reg["charged"]), reg["account_id"])

	s.title("the planner hands the deployment to a deployer sub-agent (agent.Delegate)")
	deployerID := agent.DevAttestor(s.o.url, "deployer", nil)
	_, err = planner.Delegate(ctx, agent.Delegation{Actor: deployerID, Scope: []string{"deploy:preview"},
		Budgets: []agent.Budget{{Provider: "cloudflare", Amount: "30.00", Currency: "usd"}}})
	if !errors.Is(err, agent.InvalidRequest) {
		return fmt.Errorf("a delegation with a budget above the planner's was not refused: %v", err)
	}
	s.say("a 30.00 USD budget, more than the planner's 25.00, is refused, as it must be:\n     %v", err)
	deployer, err := planner.Delegate(ctx, agent.Delegation{
		Actor:       deployerID,
		Scope:       []string{"deploy:preview", "deploy:production"},
		Resources:   []string{s.domain},
		Budgets:     []agent.Budget{{Provider: "cloudflare", Amount: "1.00", Currency: "usd"}},
		Description: "deploy " + s.domain,
	})
	if err != nil {
		return fmt.Errorf("delegate: %w", err)
	}
	dtok, err := deployer.TokenContext(ctx)
	if err != nil {
		return err
	}
	dg := agent.GrantOf(dtok)
	s.say("deployer session %s (a child of %s): scope %s; only %s; cloudflare budget 1.00 USD", dg.SessionID, g.SessionID, strings.Join(dg.Scope, " "), s.domain)
	dc, err := s.connect(ctx, deployer)
	if err != nil {
		return err
	}
	defer dc.Close()

	s.title("the deployer uploads a Worker preview")
	script := "export default {\n  fetch() { return new Response('hello from " + s.domain + "'); }\n};\n"
	pv, err := call(ctx, dc, "deploy_preview", map[string]any{"name": s.worker, "script": script})
	if err != nil {
		return fmt.Errorf("deploy_preview: %w", err)
	}
	s.say("preview %v of %v (sha256 %.12s…)", pv["preview_id"], pv["name"], pv["sha256"])

	s.title("the deployer promotes it to production: tollgate asks the human first")
	pr, err := call(ctx, dc, "deploy_promote", map[string]any{"name": s.worker, "preview_id": pv["preview_id"]})
	if err != nil {
		return fmt.Errorf("deploy_promote: %w", err)
	}
	s.say("live: %v serves %v, sha256 %.12s…", pr["name"], pr["domain"], pr["sha256"])

	s.title("the task is done: the planner revokes it (RFC 7009)")
	revoked = true
	if err := planner.Revoke(ctx); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if _, err := call(ctx, dc, "whoami", nil); err == nil {
		return errors.New("the deployer's token still works after the task was revoked")
	}
	s.say("session %s and its child %s are revoked: the deployer's next call is refused", g.SessionID, dg.SessionID)

	fmt.Fprintf(s.out, "\ndone: %s is registered and live; every step is in the audit trail of session %s\n", s.domain, g.SessionID)
	return nil
}

// connect starts an MCP client whose requests carry ts's task token, and
// whose human gates the terminal answers.
func (s *story) connect(ctx context.Context, ts *agent.TokenSource) (*client.Client, error) {
	tr, err := transport.NewStreamableHTTP(s.o.url+"/mcp", transport.WithHTTPBasicClient(ts.HTTPClient()))
	if err != nil {
		return nil, err
	}
	caps := mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}}
	c := client.NewClient(tr, client.WithElicitationHandler(s.human), client.WithClientCapabilities(caps))
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("connect to %s/mcp: %w", s.o.url, err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "tollgate-example-agent", Version: "0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}

// toolError is a tool's refusal: tollgate's stable code and its message.
type toolError struct{ code, msg string }

func (e *toolError) Error() string { return e.code + ": " + e.msg }

// call calls a tool and returns its structured result.
func call(ctx context.Context, c *client.Client, name string, args map[string]any) (map[string]any, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if res.IsError {
		if e, ok := m["error"].(map[string]any); ok {
			code, _ := e["code"].(string)
			msg, _ := e["message"].(string)
			return nil, &toolError{code: code, msg: msg}
		}
		var txt []string
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				txt = append(txt, t.Text)
			}
		}
		return nil, errors.New(strings.Join(txt, " "))
	}
	if m == nil {
		return nil, errors.New("no structured result")
	}
	return m, nil
}

// linkCloudflare is the sandbox's shortcut for what billing_setup and
// account_connect do with the human on provider pages: it links the
// human's own (sandbox) Cloudflare account. Tools act only in it.
func linkCloudflare(ctx context.Context, base, email string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/dev/cloudflare/link", strings.NewReader(url.Values{"email": {email}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccountID   string `json:"account_id"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK || body.AccountID == "" {
		return "", fmt.Errorf("%s/dev/cloudflare/link: %d %s %s", base, resp.StatusCode, body.Error, body.Description)
	}
	return body.AccountID, nil
}

func list(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func display(v any) string {
	if m, ok := v.(map[string]any); ok {
		if d, ok := m["display"].(string); ok {
			return d
		}
	}
	return compact(v)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
