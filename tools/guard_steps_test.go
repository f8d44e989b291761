package tools

// Every tool through the guard, asserting its steps in order (issue 12
// item 5). The steps are what the recording fakes log (fakes_test.go):
//
//	token            step 1, the task token verified (stdio: Credentials)
//	session          step 2, the session alive            ┐ first phase:
//	loop             step 5, loop guard and rate limit     │ one fused
//	idem.peek        step 6, a stored result to replay?    │ script
//	audit:tool_call  the call's entry                      ┘
//	tenant           step 4b, the account read resolved (and zone)
//	quote            the tool's own quote of a paid call
//	gate.ask         step 7, the tool's Ask (gate.approval, gate.consume, audit:gate: its answer)
//	session.recheck  the session re-checked                ┐ second phase,
//	idem.begin       step 6, the lock                      │ right before
//	hold, audit:hold step 8                                ┘ the provider
//	handler          step 9 (what it logs after it, it did itself)
//	commit/release   step 10                               ┐ third phase
//	idem.complete    step 10                               │
//	audit:<outcome>  commit, release or tool_result        ┘
//	loop.refused:<code>  a refusal fed back to the loop guard
//	audit:tool_call  (last) a refusal or question after the first phase
//	audit:tool_result (last) how an unpaid call that acted in an account ended
//
// Step 4 (the target against tollgate:resources) and step 3 (scopes) call
// no dependency; the negative rows pin where they stop a call.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
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

// Tool-call prefixes: the token, then the first phase (session, loop
// guard, idempotency peek, the call's entry appended in the same script),
// then the account it read resolved.
var (
	unpaid   = []string{"token", "session", "audit:tool_call"}
	metered  = []string{"token", "session", "loop", "audit:tool_call"}
	resolved = []string{"token", "session", "loop", "audit:tool_call", "tenant"}
	creating = []string{"token", "session", "loop", "idem.peek", "audit:tool_call", "tenant"}
	// refusedEarly: steps 3 and 4 (scopes, resources) and the budget
	// check call no store; the refusal is the call's one entry.
	refusedEarly = []string{"token", "audit:tool_call"}
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
			want: steps(unpaid, []string{"handler"})},
		{name: "catalog_search: no provider, no pipeline", tool: "catalog_search", args: map[string]any{"query": "dns"},
			want: steps(unpaid, []string{"handler"})},
		{name: "catalog_get", tool: "catalog_get", args: map[string]any{"id": "cloudflare/registrar:domain.com"},
			want: steps(unpaid, []string{"handler"})},
		{name: "plan_quote reads the ledger, nothing else", tool: "plan_quote",
			args: map[string]any{"actions": []any{map[string]any{"tool": "dns_upsert"}}},
			want: steps(unpaid, []string{"handler"})},
		{name: "spend_status reads the ledger in its handler", tool: "spend_status", args: map[string]any{"provider": "cloudflare"},
			want: steps(unpaid, []string{"handler", "spend.status", "spend.budget"})},
		{name: "domain_check: metered, in the account, no zone", tool: "domain_check", args: map[string]any{"domain": newDomain},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
		{name: "dns_list: owned zone read", tool: "dns_list", args: map[string]any{"zone": zoneName},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
		{name: "dns_upsert: owned zone write, neither creating nor paid", tool: "dns_upsert",
			args: map[string]any{"zone": zoneName, "type": "A", "name": "www", "content": "192.0.2.1"},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
		{name: "dns_delete", tool: "dns_delete",
			setup: func(t *testing.T, h *harness) map[string]any {
				res := h.call(t, "dns_upsert", map[string]any{"zone": zoneName, "type": "A", "name": "www", "content": "192.0.2.1"})
				var out dnsUpsertResult
				decode(t, res, &out)
				return map[string]any{"zone": zoneName, "id": out.Record.ID}
			},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
		{name: "ssl_configure", tool: "ssl_configure", args: map[string]any{"zone": zoneName, "mode": "strict"},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
		{name: "api_token_create: creating, so idempotent and re-checked", tool: "api_token_create",
			args:          map[string]any{"zone": zoneName, "permissions": []any{"DNS Write"}},
			want:          steps(creating, []string{"session.recheck", "idem.begin", "handler", "secret.has", "secret.add", "idem.complete", "audit:tool_result"}),
			providerCalls: true},
		{name: "billing_setup: asks nothing when a payment method is on file", tool: "billing_setup", args: map[string]any{},
			want: steps(metered, []string{"gate.ask", "links.get", "session.recheck", "handler", "links.get", "audit:tool_result"})},
		{name: "deploy_preview: worker target in an owned zone", tool: "deploy_preview",
			args: map[string]any{"name": "shop-example", "script": workerScript},
			want: steps(resolved, []string{"handler", "audit:tool_result"}), providerCalls: true},
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
			want:          steps(resolved, []string{"gate.ask", "gate.consume", "audit:gate", "session.recheck", "handler", "audit:tool_result"}),
			providerCalls: true},
		{name: "domain_register: paid, held, committed", tool: "domain_register", args: map[string]any{"domain": newDomain},
			want: steps(creating, []string{"quote", "gate.ask", "session.recheck", "idem.begin", "hold", "audit:hold",
				"handler", "commit", "idem.complete", "zone.record", "audit:commit"}),
			providerCalls: true,
			check: func(t *testing.T, h *harness, _ *mcp.CallToolResult) {
				if got := h.ledger.settledAs(); !slices.Equal(got, []string{"commit"}) {
					t.Errorf("hold settled as %v, want one commit", got)
				}
				if n := len(h.cf.Charges()); n != 1 || registrations(h) != 1 {
					t.Errorf("%d registrations billed, %d ordered; want 1", n, registrations(h))
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
	// The call's entries say who called; the first is its tool_call.
	entries := h.trail.all()
	var mine []sessions.Entry
	for _, e := range entries {
		if e.Tool == r.tool && e.Event != "gate" {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 || mine[len(mine)-1].Principal != "user:alice@example.com" || mine[len(mine)-1].Session != "sid-1" {
		t.Errorf("audit entries of the call %+v", mine)
	}
	if !slices.ContainsFunc(mine, func(e sessions.Entry) bool { return e.Event == "tool_call" }) {
		t.Errorf("no tool_call entry among %+v", mine)
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
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/registrar/registrations") {
			n++
		}
	}
	return n
}

// nothingSent: no hold, no registration ordered, nothing billed.
func nothingSent(t *testing.T, h *harness, _ *mcp.CallToolResult) {
	t.Helper()
	if n := h.ledger.heldCount(); n != 0 {
		t.Errorf("%d holds made", n)
	}
	if n := registrations(h); n != 0 {
		t.Errorf("%d registration orders sent", n)
	}
	if n := len(h.cf.Charges()); n != 0 {
		t.Errorf("%d registrations billed", n)
	}
}

// noProviderCalled: the refusal says no provider was called.
func noProviderCalled(t *testing.T, res *mcp.CallToolResult) {
	t.Helper()
	if b, ok := errorBody(res); !ok || b.ProviderCalled {
		t.Errorf("refusal says provider_called=%v (structured: %v)", b.ProviderCalled, ok)
	}
}

// withClaims changes Alice's claims for one row.
func withClaims(change func(c *auth.Claims)) func(h *harness) {
	return func(h *harness) {
		h.verifier.mu.Lock()
		defer h.verifier.mu.Unlock()
		c := *h.verifier.claims
		change(&c)
		h.verifier.claims = &c
	}
}

var registerArgs = map[string]any{"domain": newDomain}
var upsertArgs = map[string]any{"zone": zoneName, "type": "A", "name": "www", "content": "192.0.2.1"}

// Each refusal stops the call at its step: nothing after it runs, no hold
// is made and (but for a quote's availability check) no provider is
// reached.
func TestGuardStopsAtTheRefusingStep(t *testing.T) {
	stored, err := json.Marshal(result(map[string]any{"domain": newDomain, "status": "registered"}))
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		name    string
		tool    string
		args    map[string]any
		prepare func(h *harness)
		want    []string
		code    fault.Code
		// quoted: the quote's availability check reached Cloudflare (the
		// only provider request allowed before the handler).
		quoted bool
		check  func(t *testing.T, h *harness, res *mcp.CallToolResult)
	}{
		{name: "unknown token stops at step 1", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.verifier.set(nil) },
			want:    []string{"token", "audit:tool_call"}, code: fault.Unauthenticated},
		{name: "revoked session stops at step 2", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.sessions.err = fault.New(sessions.TokenRevoked, "revoked") },
			want:    []string{"token", "session", "audit:tool_call"}, code: sessions.TokenRevoked},
		{name: "missing scope stops after the session", tool: "dns_upsert", args: upsertArgs,
			prepare: withClaims(func(c *auth.Claims) { c.Scope = "dns:read domain:register" }),
			want:    refusedEarly, code: fault.InsufficientScope},
		{name: "missing scope on a paid tool", tool: "domain_register", args: registerArgs,
			prepare: withClaims(func(c *auth.Claims) { c.Scope = "domain:read" }),
			want:    refusedEarly, code: fault.InsufficientScope},
		{name: "zone not in tollgate:resources stops before loop and tenant", tool: "dns_upsert",
			args: map[string]any{"zone": "other.example", "type": "A", "name": "www", "content": "192.0.2.1"},
			want: refusedEarly, code: fault.ResourceForbidden},
		{name: "domain not in tollgate:resources stops before loop and tenant", tool: "domain_register",
			args: map[string]any{"domain": "elsewhere.com"},
			want: refusedEarly, code: fault.ResourceForbidden},
		{name: "a name that only starts with a named zone is not it", tool: "dns_list",
			args: map[string]any{"zone": "shop.example.evil.com"},
			want: refusedEarly, code: fault.ResourceForbidden},
		{name: "a token naming no domains may not write", tool: "dns_upsert", args: upsertArgs,
			prepare: withClaims(func(c *auth.Claims) { c.AuthorizationDetails = nil }),
			want:    refusedEarly, code: fault.ResourceForbidden},
		{name: "loop guard refusal stops before tenancy", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.loop.err = fault.New(loopguard.RateLimited, "slow down") },
			want:    []string{"token", "session", "loop", "loop.refused:rate_limited", "audit:tool_call"}, code: loopguard.RateLimited},
		{name: "no linked account stops a zone write at tenancy", tool: "dns_upsert", args: upsertArgs,
			prepare: func(h *harness) { h.tenancy.err = fault.New(fault.AccountRequired, "link an account") },
			want:    steps(resolved, []string{"loop.refused:account_required", "audit:tool_call"}), code: fault.AccountRequired},
		{name: "no linked account stops a purchase before idempotency and hold", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.tenancy.err = fault.New(fault.AccountRequired, "link an account") },
			want:    steps(creating, []string{"loop.refused:account_required", "audit:tool_call"}), code: fault.AccountRequired},
		{name: "a named zone the account does not hold is refused at tenancy", tool: "dns_upsert",
			args: map[string]any{"zone": newDomain, "type": "A", "name": "www", "content": "192.0.2.1"},
			want: steps(resolved, []string{"loop.refused:resource_forbidden", "audit:tool_call"}), code: fault.ResourceForbidden},
		{name: "idempotency replay answers the stored result, nothing else runs", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.idem.replay = stored },
			want:    []string{"token", "session", "loop", "idem.peek", "audit:tool_call"},
			check: func(t *testing.T, h *harness, res *mcp.CallToolResult) {
				var out map[string]any
				decode(t, res, &out)
				if out["status"] != "registered" {
					t.Errorf("replayed %v, want the stored result", out)
				}
			}},
		{name: "idempotency refusal (in flight) stops before the quote", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.idem.err = fault.New("call_in_progress", "the same call is running") },
			want:    []string{"token", "session", "loop", "idem.peek", "loop.refused:call_in_progress", "audit:tool_call"}, code: "call_in_progress"},
		{name: "cap exceeded: hold refused, handler not run, idempotency aborted", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.ledger.err = fault.New(spend.CapExceeded, "over the cap") },
			want: steps(creating, []string{"quote", "gate.ask", "session.recheck", "idem.begin", "hold", "idem.abort",
				"loop.refused:cap_exceeded", "audit:tool_call"}), code: spend.CapExceeded, quoted: true},
		{name: "no task budget for the provider: refused before anything is quoted, asked or held", tool: "domain_register", args: registerArgs,
			prepare: withClaims(func(c *auth.Claims) {
				ds, err := auth.ParseAuthorizationDetails([]byte(`[{"type":"tollgate:resources","domains":["` + newDomain + `"]}]`))
				if err != nil {
					panic(err)
				}
				c.AuthorizationDetails = ds
			}),
			want: refusedEarly, code: BudgetRequired},
		{name: "revoked while quoted or asked: nothing locked, held or sent", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.recheck.err = fault.New(sessions.TokenRevoked, "revoked") },
			want:    steps(creating, []string{"quote", "gate.ask", "session.recheck", "audit:tool_call"}),
			code:    sessions.TokenRevoked, quoted: true,
			check: func(t *testing.T, h *harness, _ *mcp.CallToolResult) {
				if n := h.ledger.heldCount(); n != 0 {
					t.Errorf("%d holds placed after the revoke", n)
				}
				if n := registrations(h); n != 0 {
					t.Errorf("%d registration orders sent", n)
				}
			}},
		{name: "audit trail down: the first phase fails whole, nothing is asked, held or bought", tool: "domain_register", args: registerArgs,
			prepare: func(h *harness) { h.trail.err = fault.New(fault.Unavailable, "trail down") },
			want:    []string{"token", "session", "loop", "idem.peek", "audit:tool_call", "loop.refused:unavailable", "audit:tool_call"},
			code:    fault.Unavailable,
			check: func(t *testing.T, h *harness, _ *mcp.CallToolResult) {
				if n := h.ledger.heldCount(); n != 0 {
					t.Errorf("%d holds placed with the trail down", n)
				}
				if n := registrations(h); n != 0 {
					t.Errorf("%d registration orders sent", n)
				}
			}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := newHarness(t, allTools(t))
			if r.prepare != nil {
				r.prepare(h)
			}
			res := h.call(t, r.tool, r.args)
			if got := h.log.get(); !slices.Equal(got, r.want) {
				t.Errorf("steps\n got %s\nwant %s", strings.Join(got, " "), strings.Join(r.want, " "))
			}
			if slices.Contains(h.log.get(), "handler") {
				t.Error("the handler ran")
			}
			if r.code == "" {
				if res.IsError {
					t.Errorf("refused %s: %s", resultCode(res), text(res))
				}
			} else {
				if got := resultCode(res); !res.IsError || got != r.code {
					t.Errorf("code %q (%s), want %s", got, text(res), r.code)
				}
				noProviderCalled(t, res)
			}
			// Before the handler only a paid tool's quote may read from the
			// provider, and it orders nothing.
			if n := h.providerRequests(); (n > 0) != r.quoted {
				t.Errorf("%d provider requests, want some: %v", n, r.quoted)
			}
			if r.check != nil {
				r.check(t, h, res)
			} else {
				nothingSent(t, h, res)
			}
		})
	}
}

// notInTable are tools the step table does not call yet, and why.
var notInTable = map[string]string{
	"account_connect":    "needs an AccountLinks and AccountDirectory fake and the OAuth flow",
	"subscription_start": "needs a Stripe Billing fake; always gated (purchase)",
}

// Every tool defined in this package (each mcp.NewTool in a non-test
// file) has a success row in TestGuardStepsPerTool, or is listed in
// notInTable with the reason.
func TestGuardStepsCoverEveryTool(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`mcp\.NewTool\("([a-z_]+)"`)
	defined := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
	}
	h := &harness{log: &stepLog{}, ledger: &fakeLedger{}}
	served := map[string]bool{}
	for _, tool := range allTools(t)(h) {
		served[tool.Name()] = true
	}
	for name := range defined {
		if !served[name] && notInTable[name] == "" {
			t.Errorf("%s is not run through the guard by the step table", name)
		}
		if served[name] && notInTable[name] != "" {
			t.Errorf("%s is in the table: drop it from notInTable", name)
		}
	}
	if len(defined) < 17 {
		t.Errorf("found %d tool definitions; the scan is broken", len(defined))
	}
}
