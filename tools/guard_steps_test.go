package tools

// Every tool through the guard, asserting its steps in order (issue 12
// item 5). The steps are what the recording fakes log (fakes_test.go):
//
//	token            step 1, the task token verified (stdio: Credentials)
//	session          step 2, the session alive
//	loop             step 5, loop guard and rate limit
//	tenant           step 4b, the principal's own account (and zone)
//	idem.begin       step 6
//	quote            the tool's own quote of a paid call
//	gate.ask         step 7, the tool's Ask (gate.approval, gate.consume, audit:gate: its answer)
//	hold, audit:hold step 8
//	session.recheck  the session re-checked right before the provider
//	handler          step 9 (what it logs after it, it did itself)
//	commit/release   step 10, with audit:commit/audit:release
//	idem.complete    step 10
//	loop.refused:<code>  a refusal fed back to the loop guard
//	audit:tool_call  the one entry per call, always last
//
// Step 4 (the target against tollgate:resources) and step 3 (scopes) call
// no dependency; the negative rows pin where they stop a call.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

const workerScript = "export default { async fetch() { return new Response('hi') } }\n"

// allTools is every tool app.go serves that this table can call with fakes
// alone (see TestGuardStepsCoverEveryTool for the ones it cannot).
func allTools(t *testing.T) func(h *harness) []Tool {
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	return func(h *harness) []Tool {
		var ts []Tool
		byName := func(name string) (Tool, bool) {
			i := slices.IndexFunc(ts, func(t Tool) bool { return t.Name() == name })
			if i < 0 {
				return Tool{}, false
			}
			return ts[i], true
		}
		high := money.Money{Minor: 1_000_000, Currency: "usd"} // no purchase gate below it
		ts = []Tool{
			Whoami(time.Now),
			CatalogSearch(cat),
			CatalogGet(cat),
			PlanQuote(QuoteConfig{Catalog: cat, Ledger: h.ledger, ConfirmAbove: high, Tools: byName}),
			SpendStatus(h.ledger),
			DomainCheck(),
			DomainRegister(RegisterConfig{PollEvery: time.Millisecond, ConfirmAbove: high, Ledger: h.ledger, Zones: &fakeZones{log: h.log}}),
			DNSList(),
			DNSUpsert(),
			DNSDelete(),
			SSLConfigure(),
			APITokenCreate(&fakeSecrets{log: h.log}, time.Now),
			BillingSetup(&fakeLinks{log: h.log}),
			DeployPreview(DeployConfig{WorkersSubdomain: "alice"}),
			DeployPromote(),
		}
		return ts
	}
}

// Tool-call prefixes.
var (
	unpaid   = []string{"token", "session"}
	metered  = []string{"token", "session", "loop"}
	resolved = []string{"token", "session", "loop", "tenant"}
)

func steps(parts ...[]string) []string { return slices.Concat(parts...) }

type stepRow struct {
	name string
	tool string
	// setup prepares the fakes (and earlier calls) and returns the
	// arguments; it runs before the step log is cleared.
	setup func(t *testing.T, h *harness) map[string]any
	args  map[string]any
	want  []string
	// code is the refusal's code; "" means a result.
	code fault.Code
	// providerCalls: whether the Cloudflare fake saw requests during the
	// call itself.
	providerCalls bool
	check         func(t *testing.T, h *harness, res *mcp.CallToolResult)
}

func TestGuardStepsPerTool(t *testing.T) {
	rows := []stepRow{
		{name: "whoami: identity only", tool: "whoami", args: map[string]any{},
			want: steps(unpaid, []string{"handler", "audit:tool_call"})},
		{name: "catalog_search: no provider, no pipeline", tool: "catalog_search", args: map[string]any{"query": "dns"},
			want: steps(unpaid, []string{"handler", "audit:tool_call"})},
		{name: "catalog_get", tool: "catalog_get", args: map[string]any{"id": "cloudflare/registrar:domain.com"},
			want: steps(unpaid, []string{"handler", "audit:tool_call"})},
		{name: "plan_quote reads the ledger, nothing else", tool: "plan_quote",
			args: map[string]any{"actions": []any{map[string]any{"tool": "dns_upsert"}}},
			want: steps(unpaid, []string{"handler", "audit:tool_call"})},
		{name: "spend_status reads the ledger in its handler", tool: "spend_status", args: map[string]any{"provider": "cloudflare"},
			want: steps(unpaid, []string{"handler", "spend.status", "spend.budget", "audit:tool_call"})},
		{name: "domain_check: metered, in the account, no zone", tool: "domain_check", args: map[string]any{"domain": newDomain},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "dns_list: owned zone read", tool: "dns_list", args: map[string]any{"zone": zoneName},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "dns_upsert: owned zone write, neither creating nor paid", tool: "dns_upsert",
			args: map[string]any{"zone": zoneName, "type": "A", "name": "www", "content": "192.0.2.1"},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "dns_delete", tool: "dns_delete",
			setup: func(t *testing.T, h *harness) map[string]any {
				res := h.call(t, "dns_upsert", map[string]any{"zone": zoneName, "type": "A", "name": "www", "content": "192.0.2.1"})
				var out dnsUpsertResult
				decode(t, res, &out)
				return map[string]any{"zone": zoneName, "id": out.Record.ID}
			},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "ssl_configure", tool: "ssl_configure", args: map[string]any{"zone": zoneName, "mode": "strict"},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "api_token_create: creating, so idempotent and re-checked", tool: "api_token_create",
			args: map[string]any{"zone": zoneName, "permissions": []any{"DNS Write"}},
			want: steps(resolved, []string{"idem.begin", "session.recheck", "handler", "secret.has", "secret.add", "idem.complete", "audit:tool_call"}),
			providerCalls: true},
		{name: "billing_setup: asks nothing when a payment method is on file", tool: "billing_setup", args: map[string]any{},
			want: steps(metered, []string{"gate.ask", "links.get", "session.recheck", "handler", "links.get", "audit:tool_call"})},
		{name: "deploy_preview: worker target in an owned zone", tool: "deploy_preview",
			args: map[string]any{"name": "shop-example", "script": workerScript},
			want: steps(resolved, []string{"handler", "audit:tool_call"}), providerCalls: true},
		{name: "deploy_promote: first call parks an approval", tool: "deploy_promote",
			setup: previewArgs,
			want:  steps(resolved, []string{"gate.ask", "gate.approval", "audit:gate", "loop.refused:approval_required", "audit:tool_call"}),
			code:  ApprovalRequired, providerCalls: true, // the gate reads the scripts to show the change
			check: noUpload},
		{name: "deploy_promote: the approved retry promotes", tool: "deploy_promote",
			setup: func(t *testing.T, h *harness) map[string]any {
				args := previewArgs(t, h)
				res := h.call(t, "deploy_promote", args)
				var out struct {
					Error struct {
						Details struct {
							ApprovalID string `json:"approval_id"`
						} `json:"details"`
					} `json:"error"`
				}
				b, _ := json.Marshal(res.StructuredContent)
				if err := json.Unmarshal(b, &out); err != nil || out.Error.Details.ApprovalID == "" {
					t.Fatalf("no approval id in %s", b)
				}
				args["approval_id"] = out.Error.Details.ApprovalID
				return args
			},
			want:          steps(resolved, []string{"gate.ask", "gate.consume", "audit:gate", "session.recheck", "handler", "audit:tool_call"}),
			providerCalls: true},
		{name: "domain_register: paid, held, committed", tool: "domain_register", args: map[string]any{"domain": newDomain},
			want: steps(resolved, []string{"idem.begin", "quote", "gate.ask", "hold", "audit:hold", "session.recheck",
				"handler", "zone.record", "commit", "audit:commit", "idem.complete", "audit:tool_call"}),
			providerCalls: true,
			check: func(t *testing.T, h *harness, _ *mcp.CallToolResult) {
				if got := h.ledger.settledAs(); !slices.Equal(got, []string{"commit"}) {
					t.Errorf("hold settled as %v, want one commit", got)
				}
				if n := len(h.cf.Charges()); n != 1 {
					t.Errorf("%d registrations billed, want 1", n)
				}
			}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) { runStepRow(t, r) })
	}
}

func runStepRow(t *testing.T, r stepRow) {
	h := newHarness(t, allTools(t))
	args := r.args
	if r.setup != nil {
		args = r.setup(t, h)
	}
	before := h.providerRequests()
	res := h.call(t, r.tool, args)
	if got := h.log.get(); !slices.Equal(got, r.want) {
		t.Errorf("steps\n got %s\nwant %s", strings.Join(got, " "), strings.Join(r.want, " "))
	}
	switch {
	case r.code == "" && res.IsError:
		t.Errorf("refused %s: %s", resultCode(res), text(res))
	case r.code != "" && !res.IsError:
		t.Errorf("answered, want refusal %s", r.code)
	case r.code != "" && resultCode(res) != r.code:
		t.Errorf("refused %s (%s), want %s", resultCode(res), text(res), r.code)
	}
	if called := h.providerRequests() > before; called != r.providerCalls {
		t.Errorf("provider called: %v, want %v (%d requests)", called, r.providerCalls, h.providerRequests()-before)
	}
	// The audit entry of the call is the last step, and says who called.
	entries := h.trail.all()
	if last := entries[len(entries)-1]; last.Event != "tool_call" || last.Tool != r.tool || last.Principal != "user:alice@example.com" || last.Session != "sid-1" {
		t.Errorf("last audit entry %+v", last)
	}
	if r.check != nil {
		r.check(t, h, res)
	}
}

// previewArgs uploads a preview and returns deploy_promote's arguments.
func previewArgs(t *testing.T, h *harness) map[string]any {
	res := h.call(t, "deploy_preview", map[string]any{"name": "shop-example", "script": workerScript})
	var out deployPreviewResult
	decode(t, res, &out)
	return map[string]any{"name": "shop-example", "preview_id": out.PreviewID}
}

// noUpload: the production script was not written.
func noUpload(t *testing.T, h *harness, _ *mcp.CallToolResult) {
	t.Helper()
	if _, ok := h.cf.Scripts()["shop-example"]; ok {
		t.Error("production script uploaded before a human approved")
	}
}

func decode(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("setup call refused: %s", text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// registrations counts the registration orders the Cloudflare fake got.
func registrations(h *harness) int {
	n := 0
	for _, r := range h.cf.Requests() {
		if r.Method == http.MethodPost && strings.Contains(r.Path, "/registrar/") {
			n++
		}
	}
	return n
}

var (
	_ = context.Background
	_ = loopguard.RateLimited
	_ = spend.CapExceeded
	_ = registrations
)
