package tools

// The harness serves tools through NewServer with the recording fakes and
// the Cloudflare fake behind the tenancy fake, and calls them with mcp-go's
// in-process client, as the stdio transport would (identity from
// GuardConfig.Credentials).

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/auth"
	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

const (
	harnessToken = "task-token"
	zoneName     = "shop.example" // a zone of the linked account
	newDomain    = "newshop.com"  // free to register
)

type harness struct {
	log       *stepLog
	trail     *fakeTrail
	verifier  *fakeVerifier
	sessions  *fakeSessions // step 2
	recheck   *fakeSessions // the re-check before the provider
	loop      *fakeLoop
	idem      *fakeIdem
	ledger    *fakeLedger
	tenancy   *fakeTenancy
	approvals *fakeApprovals
	cf        *cffake.Fake
	client    *client.Client
	deps      GuardDeps // what the server's guard was built from
}

// allScopes is every scope any of ts needs.
func allScopes(ts []Tool) []string {
	var out []string
	for _, t := range ts {
		for _, s := range t.Scopes {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// aliceClaims: every scope of ts, the two test domains, and a budget at
// each provider.
func aliceClaims(t *testing.T, scopes []string) *auth.Claims {
	t.Helper()
	ds, err := auth.ParseAuthorizationDetails([]byte(`[
		{"type":"tollgate:resources","domains":["` + zoneName + `","` + newDomain + `"]},
		{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},
		{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`))
	if err != nil {
		t.Fatal(err)
	}
	scope, err := auth.JoinScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &auth.Claims{Issuer: "https://tollgate.test", Subject: "user:alice@example.com", Audience: "https://tollgate.test/mcp",
		ID: "jti-1", Scope: scope, ClientID: "agent-1", SessionID: "sid-1", Act: auth.NewActorChain("agent-1"),
		AuthorizationDetails: ds}
}

// newHarness serves the tools build returns (given the fakes, for tools
// that read them) through the guard. Each tool's handler, Quote and Ask are
// wrapped to record "handler", "quote" and "gate.ask".
func newHarness(t *testing.T, build func(h *harness) []Tool) *harness {
	t.Helper()
	log := &stepLog{}
	fake := cffake.New(cffake.Config{Token: "t"})
	url, stop := fake.Start()
	t.Cleanup(stop)
	base, err := cloudflare.NewClient(cloudflare.Config{BaseURL: url, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.As(cloudflare.Credential{AccountID: fake.AccountID(), Token: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})})
	if err != nil {
		t.Fatal(err)
	}
	z, err := fake.EnsureZone(zoneName)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		log:       log,
		trail:     &fakeTrail{log: log},
		verifier:  &fakeVerifier{log: log, token: harnessToken},
		sessions:  &fakeSessions{log: log, name: "session"},
		recheck:   &fakeSessions{log: log, name: "session.recheck"},
		loop:      &fakeLoop{log: log},
		idem:      &fakeIdem{log: log},
		ledger:    &fakeLedger{log: log},
		approvals: &fakeApprovals{log: log},
		tenancy: &fakeTenancy{log: log, client: cf, account: fake.AccountID(), zones: map[domainname.Name]cloudflare.Zone{
			zoneName: {ID: z.ID, Name: zoneName, Status: z.Status},
		}},
		cf: fake,
	}
	ts := build(h)
	h.verifier.set(aliceClaims(t, allScopes(ts)))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := GuardDeps{
		Trail: h.trail, Log: quiet,
		Guard: GuardConfig{Verifier: h.verifier,
			Credentials: func(context.Context) (string, error) { return harnessToken, nil }},
		Pipeline: PipelineConfig{Phases: &fakePhases{sessions: h.sessions, recheck: h.recheck, loop: h.loop, idem: h.idem, ledger: h.ledger, trail: h.trail},
			Tenancy: h.tenancy, Idem: h.idem, Loop: h.loop, Sessions: h.recheck,
			Trail: h.trail, Log: quiet, HandlerDeadline: 30 * time.Second,
			Gates: GateConfig{Sealer: &fakeSealer{log: log}, Approvals: h.approvals, Consents: &fakeConsents{log: log},
				ApprovalURL: func(id string) string { return "https://tollgate.test/approvals/" + id }}},
	}
	h.deps = deps
	wrapped := make([]Tool, 0, len(ts))
	for _, tool := range ts {
		wrapped = append(wrapped, recorded(log, tool))
	}
	srv := NewServer(deps, []server.ServerOption{server.WithToolCapabilities(false), server.WithRecovery()}, "tollgate-test", "0", wrapped...)
	c, err := client.NewInProcessClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "guard-steps", Version: "0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	h.client = c
	return h
}

// recorded wraps the tool's own parts so the log shows when they run.
func recorded(log *stepLog, t Tool) Tool {
	t.run = recordedRunner{runner: t.run, log: log}
	return t
}

type recordedRunner struct {
	runner
	log *stepLog
}

func (r recordedRunner) quote(ctx context.Context, f facts, args any) (Quote, error) {
	r.log.add("quote")
	return r.runner.quote(ctx, f, args)
}

func (r recordedRunner) ask(ctx context.Context, f facts, args any, q *Quote) ([]Ask, error) {
	r.log.add("gate.ask")
	return r.runner.ask(ctx, f, args, q)
}

func (r recordedRunner) run(ctx context.Context, f facts, args any) outcome {
	r.log.add("handler")
	return r.runner.run(ctx, f, args)
}

// call calls tool with args, after clearing the step log.
func (h *harness) call(t *testing.T, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	h.log.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := h.client.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error %v", tool, err)
	}
	return res
}

// providerRequests is how many requests reached the Cloudflare fake.
func (h *harness) providerRequests() int { return len(h.cf.Requests()) }
