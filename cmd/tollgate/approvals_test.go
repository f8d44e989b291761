package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// listedApproval is an element of `approvals list --json`.
type listedApproval struct {
	ID        string            `json:"id"`
	Principal string            `json:"principal"`
	Kind      string            `json:"kind"`
	Tool      string            `json:"tool"`
	Status    string            `json:"status"`
	Summary   string            `json:"summary"`
	Fields    map[string]string `json:"fields"`
	DecidedBy string            `json:"decided_by"`
}

func listApprovals(t *testing.T, redisURL string, args ...string) []listedApproval {
	t.Helper()
	out, _ := cli(t, redisURL, exitOK, append([]string{"approvals", "list", "--json"}, args...)...)
	var got []listedApproval
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("approvals list --json: %v\n%s", err, out)
	}
	return got
}

func findApproval(list []listedApproval, id string) (listedApproval, bool) {
	for _, a := range list {
		if a.ID == id {
			return a, true
		}
	}
	return listedApproval{}, false
}

// registerCall calls domain_register through c, with approval_id when
// given, and returns the tool error's code ("" on success) and details.
func registerCall(t *testing.T, c *client.Client, domain, approvalID string) (string, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "domain_register"
	req.Params.Arguments = map[string]any{"domain": domain}
	if approvalID != "" {
		req.Params.Arguments = map[string]any{"domain": domain, "approval_id": approvalID}
	}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("domain_register: %v", err)
	}
	if !res.IsError {
		return "", nil
	}
	b, _ := json.Marshal(res.StructuredContent)
	var sc struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &sc)
	return sc.Error.Code, sc.Error.Details
}

// TestApprovalsCLI: an agent without elicitation gets approval_required
// from a sandbox server; the operator lists it, approves it, and the
// agent's retry goes through. Deciding again, or an unknown id, is refused.
func TestApprovalsCLI(t *testing.T) {
	url := testkit.RedisURL(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + url})
	const approveMe, denyMe = "cli-approve.io", "cli-deny.io"
	testkit.LinkAccount(t, srv.URL, "alice@example.com")
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "domain:read domain:register spend:read",
		Details: `[{"type":"tollgate:resources","domains":["` + approveMe + `","` + denyMe + `"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`})
	c := testkit.HTTP(t, srv.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})

	ask := func(domain string) string {
		t.Helper()
		code, d := registerCall(t, c, domain, "")
		id, _ := d["approval_id"].(string)
		if code != "approval_required" || id == "" {
			t.Fatalf("%s without elicitation: %q %v", domain, code, d)
		}
		return id
	}
	id := ask(approveMe)

	for _, args := range [][]string{{}, {"--principal", alicePrincipal}} {
		a, ok := findApproval(listApprovals(t, url, args...), id)
		if !ok || a.Principal != alicePrincipal || a.Kind != "purchase" || a.Tool != "domain_register" ||
			a.Status != "pending" || !strings.Contains(a.Summary, approveMe) || a.Fields["price"] != "50.00 USD" {
			t.Fatalf("approvals list --json %v: %+v (listed %v)", args, a, ok)
		}
	}
	table, _ := cli(t, url, exitOK, "approvals", "list")
	if !regexp.MustCompile(regexp.QuoteMeta(id) + `\s+` + regexp.QuoteMeta(alicePrincipal) + `\s+purchase\s+domain_register\s+pending\s+.*Approve a purchase at cloudflare: ` + regexp.QuoteMeta(approveMe)).MatchString(table) {
		t.Fatalf("approvals list table:\n%s", table)
	}
	if got := listApprovals(t, url, "--principal", "user:bob@example.com"); len(got) != 0 {
		t.Fatalf("bob's approvals: %+v", got)
	}

	out, stderr := cli(t, url, exitOK, "approvals", "approve", id, "--reason", "ok by ops")
	if out != "approved "+id+"\n" {
		t.Fatalf("approve stdout %q, want one line; stderr:\n%s", out, stderr)
	}
	if !strings.Contains(stderr, "approval decided") || strings.Contains(stderr, "audit") {
		t.Fatalf("approve did not log its audited decision:\n%s", stderr)
	}
	msgs, err := redisClient(t, url).XRange(context.Background(), auditStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, m := range msgs {
		var e struct {
			Decision string            `json:"decision"`
			Detail   map[string]string `json:"detail"`
		}
		_ = json.Unmarshal([]byte(m.Values["entry"].(string)), &e)
		audited = audited || e.Detail["approval_id"] == id && e.Decision == "allow" &&
			e.Detail["operator_reason"] == "ok by ops" && strings.HasPrefix(e.Detail["decided_by"], "cli:")
	}
	if !audited {
		t.Fatal("the operator's decision is not in the audit trail")
	}
	if code, _ := registerCall(t, c, approveMe, id); code != "" {
		t.Fatalf("the agent's retry after approve: %q", code)
	}

	if _, ok := findApproval(listApprovals(t, url), id); ok {
		t.Fatal("a used approval is still listed as pending")
	}
	a, ok := findApproval(listApprovals(t, url, "--all"), id)
	if !ok || a.Status != "used" || !strings.HasPrefix(a.DecidedBy, "cli:") {
		t.Fatalf("approvals list --all: %+v (listed %v)", a, ok)
	}

	refusals := []struct {
		name, want string
		args       []string
	}{
		{"deny of a decided approval", "approval_decided", []string{"approvals", "deny", id}},
		{"approve of a decided approval", "approval_decided", []string{"approvals", "approve", id}},
		{"unknown approval", "no approval", []string{"approvals", "approve", "nosuchapproval"}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr := cli(t, url, exitRefused, tc.args...)
			if out != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stdout %q, stderr %q; want nothing on stdout and %q on stderr", out, stderr, tc.want)
			}
		})
	}

	t.Run("deny", func(t *testing.T) {
		id := ask(denyMe)
		out, _ := cli(t, url, exitOK, "approvals", "deny", id, "--json")
		var got approvalJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != id || got.Status != "denied" ||
			got.Principal != alicePrincipal || !strings.HasPrefix(got.DecidedBy, "cli:") {
			t.Fatalf("deny --json: %v %q", err, out)
		}
		if code, _ := registerCall(t, c, denyMe, id); code != "approval_denied" {
			t.Fatalf("the agent's retry after deny: %q", code)
		}
	})

	// A billing approval is completed on Stripe's page it links to:
	// approving it here would mark it approved with nothing on file.
	t.Run("url mode", func(t *testing.T) {
		btok := testkit.TaskToken(t, srv.URL, testkit.Grant{Email: "carol@example.com", Scope: "billing:setup"})
		bc := testkit.HTTP(t, srv.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(btok)})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "billing_setup"
		res, err := bc.CallTool(ctx, req)
		if err != nil || !res.IsError {
			t.Fatalf("billing_setup without elicitation: %v %+v", err, res)
		}
		// The agent is told the human completes it at the provider, not
		// that an operator can approve it.
		if b, _ := json.Marshal(res); !strings.Contains(string(b), "provider's page") || strings.Contains(string(b), "tollgate approvals approve") {
			t.Fatalf("billing_setup's approval_required: %s", b)
		}
		var billing string
		for _, a := range listApprovals(t, url, "--principal", "user:carol@example.com") {
			if a.Kind == "billing" && a.Status == "pending" {
				billing = a.ID
			}
		}
		if billing == "" {
			t.Fatal("no pending billing approval for carol")
		}
		out, stderr := cli(t, url, exitUsage, "approvals", "approve", billing)
		if out != "" || !strings.Contains(stderr, "provider's page") || !strings.Contains(stderr, "Nothing was done") {
			t.Fatalf("approve of a billing approval: stdout %q stderr %q", out, stderr)
		}
		if a, ok := findApproval(listApprovals(t, url, "--principal", "user:carol@example.com"), billing); !ok || a.Status != "pending" {
			t.Fatalf("after the refused approve: %+v (listed %v)", a, ok)
		}
		cli(t, url, exitOK, "approvals", "deny", billing)
	})

	t.Run("usage", func(t *testing.T) {
		_, stderr, code := runBin(t, []string{"TOLLGATE_REDIS_URL="}, "approvals", "list")
		if code != exitUsage || !strings.Contains(stderr, "--redis-url") {
			t.Fatalf("list without --redis-url: exit %d %q", code, stderr)
		}
		_, stderr, code = runBin(t, []string{"TOLLGATE_REDIS_URL=" + url}, "approvals", "approve")
		if code != exitUsage {
			t.Fatalf("approve without an id: exit %d %q", code, stderr)
		}
	})
}
