package policy

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestSandboxActFor(t *testing.T) {
	e := sandbox(t)
	tests := []struct {
		name    string
		agent   Agent
		subject Subject
		want    want
	}{
		{"sandbox dev agent may act for a user", devAgent, alice,
			want{allow: true, ids: []string{"sandbox-act-for-users"}}},
		{"unix agent may act for a user", unixAgent, alice,
			want{allow: true, ids: []string{"sandbox-act-for-users"}}},
		{"unknown trust domain is denied by default", foreignJWT, alice,
			want{}},
		{"jwt agent in the sandbox trust domain is not a dev agent",
			Agent{ID: devAgent.ID, Kind: KindJWT}, alice, want{}},
		{"dev kind claimed from a foreign trust domain",
			Agent{ID: "spiffe://evil.example/agent/deployer", Kind: KindDev}, alice, want{}},
		{"trust domain spoofed through attrs",
			Agent{ID: "spiffe://evil.example/agent/x", Kind: KindDev, Attrs: map[string]string{"trust_domain": "tollgate.sandbox"}},
			alice, want{}},
		{"trust domain claimed through attrs by a non-spiffe agent",
			Agent{ID: "dev-agent", Kind: KindDev, Attrs: map[string]string{"trust_domain": "tollgate.sandbox"}},
			alice, want{}},
		{"kind spoofed through attrs",
			Agent{ID: "spiffe://evil.example/agent/x", Kind: KindJWT, Attrs: map[string]string{"kind": "unix"}},
			alice, want{}},
		{"trust domain suffix trick",
			Agent{ID: "spiffe://tollgate.sandbox.evil.example/agent/x", Kind: KindDev}, alice, want{}},
		{"dev agent may act for an upstream dev agent", devSub, devAgent.AsSubject(),
			want{allow: true, ids: []string{"sandbox-dev-subagents"}}},
		{"dev agent may act as itself (self mode; the exchange refuses self-delegation loops)", devAgent, devAgent.AsSubject(), want{allow: true, ids: []string{"sandbox-self"}}},
		{"unix agent may not act for an upstream agent", unixAgent, devAgent.AsSubject(), want{}},
		{"dev agent may not act for a foreign upstream agent", devSub, foreignJWT.AsSubject(), want{}},
		{"blocked agent is forbidden although a permit matches", blocked, alice,
			want{ids: []string{"forbid-blocked-agents"}}},
		{"nobody may act for a blocked upstream agent", devSub, blocked.AsSubject(),
			want{ids: []string{"forbid-blocked-agents"}}},
		{"malformed spiffe path fails closed",
			Agent{ID: "spiffe://tollgate.sandbox/agent/../admin", Kind: KindDev}, alice, want{failed: true}},
		{"upper-case spiffe scheme fails closed",
			Agent{ID: "SPIFFE://tollgate.sandbox/agent/x", Kind: KindDev}, alice, want{failed: true}},
		{"spiffe id with a port fails closed",
			Agent{ID: "spiffe://tollgate.sandbox:443/agent/x", Kind: KindDev}, alice, want{failed: true}},
		{"unix kind with a spiffe id fails closed",
			Agent{ID: devAgent.ID, Kind: KindUnix}, alice, want{failed: true}},
		{"dev kind with a unix id fails closed",
			Agent{ID: unixAgent.ID, Kind: KindDev}, alice, want{failed: true}},
		{"malformed unix id fails closed",
			Agent{ID: "unix:uid=root:exe=/bin/sh:sha256=" + testSum, Kind: KindUnix}, alice, want{failed: true}},
		{"unknown agent kind fails closed",
			Agent{ID: devAgent.ID, Kind: "root"}, alice, want{failed: true}},
		{"empty agent id fails closed", Agent{Kind: KindDev}, alice, want{failed: true}},
		{"user subject without the user: prefix fails closed", devAgent,
			Subject{ID: "alice@example.com", Kind: KindUser}, want{failed: true}},
		{"user subject with a malformed email fails closed", devAgent,
			Subject{ID: "user:alice", Kind: KindUser, Attrs: map[string]string{"email": "a@b@c", "email_verified": "true"}}, want{failed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, e.MayActFor(tt.agent, tt.subject), tt.want)
		})
	}
}

func TestImpersonation(t *testing.T) {
	pair, err := LoadFile("testdata/impersonate_pair.cedar")
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	tests := []struct {
		name          string
		engine        *Engine
		actor, target Agent
		want          want
	}{
		{"sandbox denies impersonation by default", sandbox(t), devAgent, devSub, want{}},
		{"sandbox denies impersonating oneself", sandbox(t), devAgent, devAgent, want{}},
		{"the named pair is allowed", pair, pairA, pairB,
			want{allow: true, ids: []string{"policy0"}}},
		{"the reverse of the pair is denied", pair, pairB, pairA, want{}},
		{"another actor for the same target is denied", pair, pairC, pairB, want{}},
		{"the same actor for another target is denied", pair, pairA, pairC, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.engine.MayImpersonate(tt.actor, tt.target), tt.want)
		})
	}
	t.Run("the pair does not grant delegation", func(t *testing.T) {
		check(t, pair.MayActFor(pairA, pairB.AsSubject()), want{})
	})
}

func TestForbidWins(t *testing.T) {
	e := mustParse(t, allowAllSrc+`
@id("a-as-b")
permit (
  principal == Tollgate::Agent::"spiffe://example.org/agent/a",
  action == Tollgate::Action::"impersonate",
  resource == Tollgate::Agent::"spiffe://example.org/agent/b"
);

@id("no-impersonation")
forbid (principal, action == Tollgate::Action::"impersonate", resource);

@id("no-stripe")
forbid (principal, action == Tollgate::Action::"spend", resource == Tollgate::Provider::"stripe");
`)
	check(t, e.MayActFor(devAgent, alice), want{allow: true, ids: []string{"allow-all"}})
	check(t, e.MayImpersonate(pairA, pairB), want{ids: []string{"no-impersonation"}})
	check(t, e.MaxSpend(devAgent, alice, "cloudflare", 1, "usd"), want{allow: true, ids: []string{"allow-all"}})
	check(t, e.MaxSpend(devAgent, alice, "stripe", 1, "usd"), want{ids: []string{"no-stripe"}})
}

func TestAllowedScopes(t *testing.T) {
	e := sandbox(t)
	tests := []struct {
		name      string
		agent     Agent
		requested []string
		allowed   []string
		decisions map[string]want
	}{
		{
			name:      "narrows to the sandbox allowance, keeps order, drops duplicates",
			agent:     devAgent,
			requested: []string{"dns:write", "admin:root", "catalog:read", "dns:write"},
			allowed:   []string{"dns:write", "catalog:read"},
			decisions: map[string]want{
				"dns:write":    {allow: true, ids: []string{"sandbox-scopes"}},
				"admin:root":   {},
				"catalog:read": {allow: true, ids: []string{"sandbox-scopes"}},
			},
		},
		{
			name:      "every sandbox scope is allowed to a unix agent",
			agent:     unixAgent,
			requested: sandboxScopes(),
			allowed:   sandboxScopes(),
		},
		{
			name:      "a foreign agent gets nothing",
			agent:     foreignJWT,
			requested: []string{"dns:read", "dns:write"},
			decisions: map[string]want{"dns:read": {}, "dns:write": {}},
		},
		{
			name:      "a blocked agent gets nothing",
			agent:     blocked,
			requested: []string{"dns:read"},
			decisions: map[string]want{"dns:read": {ids: []string{"forbid-blocked-agents"}}},
		},
		{
			name:      "scope smuggling two scopes in one string fails closed",
			agent:     devAgent,
			requested: []string{"dns:read dns:write", ""},
			decisions: map[string]want{"dns:read dns:write": {failed: true}, "": {failed: true}},
		},
		{
			name:      "nothing requested, nothing allowed",
			agent:     devAgent,
			decisions: map[string]want{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, d := e.AllowedScopes(tt.agent, alice, tt.requested)
			if !slices.Equal(allowed, tt.allowed) {
				t.Errorf("allowed = %q, want %q", allowed, tt.allowed)
			}
			if tt.decisions == nil {
				return
			}
			if len(d) != len(tt.decisions) {
				t.Errorf("got %d decisions, want %d: %+v", len(d), len(tt.decisions), d)
			}
			for scope, w := range tt.decisions {
				t.Run(scope, func(t *testing.T) { check(t, d[scope], w) })
			}
		})
	}
}

func sandboxScopes() []string {
	return []string{"catalog:read", "domain:read", "domain:register", "dns:read", "dns:write",
		"ssl:write", "token:create", "deploy:preview", "deploy:production",
		"subscription:create", "spend:read", "account:link", "billing:setup"}
}

func TestMaxSpend(t *testing.T) {
	e := sandbox(t)
	spend := want{allow: true, ids: []string{"sandbox-spend-usd-100"}}
	tests := []struct {
		name     string
		agent    Agent
		provider string
		amount   int64
		currency string
		want     want
	}{
		{"at the limit is allowed", devAgent, "cloudflare", 10000, "usd", spend},
		{"at the limit with stripe is allowed", unixAgent, "stripe", 10000, "usd", spend},
		{"below the limit is allowed", devAgent, "stripe", 2000, "usd", spend},
		{"zero is allowed", devAgent, "stripe", 0, "usd", spend},
		{"currency case is normalised", devAgent, "cloudflare", 100, "USD", spend},
		{"one minor unit over the limit is denied", devAgent, "cloudflare", 10001, "usd", want{}},
		{"largest amount is denied", devAgent, "cloudflare", math.MaxInt64, "usd", want{}},
		{"other currency is denied", devAgent, "cloudflare", 100, "eur", want{}},
		{"unknown provider is denied", devAgent, "aws", 100, "usd", want{}},
		{"foreign agent is denied", foreignJWT, "cloudflare", 100, "usd", want{}},
		{"blocked agent is denied", blocked, "cloudflare", 100, "usd",
			want{ids: []string{"forbid-blocked-agents"}}},
		{"negative amount fails closed", devAgent, "cloudflare", -1, "usd", want{failed: true}},
		{"malformed currency fails closed", devAgent, "cloudflare", 100, "us dollars", want{failed: true}},
		{"provider name not in canonical form fails closed", devAgent, "Cloudflare", 100, "usd", want{failed: true}},
		{"empty provider fails closed", devAgent, "", 100, "usd", want{failed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, e.MaxSpend(tt.agent, alice, tt.provider, tt.amount, tt.currency), tt.want)
		})
	}
}

func TestFailsClosed(t *testing.T) {
	erroringForbid := mustParse(t, allowAllSrc+`
@id("forbid-red-team")
forbid (principal, action, resource) when { principal.team == "red" };
`)
	overflow := mustParse(t, `
@id("overflowing-permit")
permit (principal, action == Tollgate::Action::"spend", resource)
when { context.amount_minor + 9223372036854775807 > 0 };
`)
	team := func(a Agent, t string) Agent {
		a.Attrs = map[string]string{"team": t}
		return a
	}
	tests := []struct {
		name   string
		decide func() Decision
		want   want
	}{
		{"a forbid that errors does not fail open",
			func() Decision { return erroringForbid.MayActFor(devAgent, alice) },
			want{ids: []string{"forbid-red-team"}, failed: true}},
		{"the same forbid evaluated cleanly lets the permit through",
			func() Decision { return erroringForbid.MayActFor(team(devAgent, "blue"), alice) },
			want{allow: true, ids: []string{"allow-all"}}},
		{"the same forbid matching denies",
			func() Decision { return erroringForbid.MayActFor(team(devAgent, "red"), alice) },
			want{ids: []string{"forbid-red-team"}}},
		{"an overflow in a permit denies",
			func() Decision { return overflow.MaxSpend(devAgent, alice, "stripe", 1, "usd") },
			want{ids: []string{"overflowing-permit"}, failed: true}},
		{"one entity described two ways fails closed",
			func() Decision {
				return mustParse(t, allowAllSrc).MayActFor(devAgent, Subject{ID: devAgent.ID, Kind: KindJWT})
			},
			want{failed: true}},
		{"a nil engine denies",
			func() Decision { var e *Engine; return e.MayActFor(devAgent, alice) },
			want{failed: true}},
		{"a zero engine denies",
			func() Decision { return (&Engine{}).MayImpersonate(pairA, pairB) },
			want{failed: true}},
		{"an empty policy denies everything",
			func() Decision { return mustParse(t, "").MayActFor(devAgent, alice) },
			want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.decide(), tt.want) })
	}
}

func TestDecisionErr(t *testing.T) {
	if err := (Decision{Allow: true}).Err(); err != nil {
		t.Fatalf("Err() on allow = %v", err)
	}
	err := (Decision{PolicyIDs: []string{"forbid-secret-rule"}}).Err()
	if !errors.Is(err, fault.New(PolicyDenied, "")) {
		t.Fatalf("Err() = %v, want code %q", err, PolicyDenied)
	}
	// The policy's internals stay in the cause, out of the public message.
	if msg := fault.PublicOf(err); strings.Contains(msg, "forbid-secret-rule") {
		t.Fatalf("public message leaks the policy id: %q", msg)
	}
}

func TestConcurrentDecisions(t *testing.T) {
	e := sandbox(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				if d := e.MayActFor(devAgent, alice); !d.Allow {
					t.Errorf("goroutine %d: %+v", i, d)
					return
				}
				if allowed, _ := e.AllowedScopes(unixAgent, alice, []string{"dns:write", "x:y"}); len(allowed) != 1 {
					t.Errorf("goroutine %d: allowed %q", i, allowed)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRememberedDecisionsFollowEveryInput: the memo of decisions keys on
// the whole request, so an attribute, an amount or a scope that differs
// decides afresh, and a caller cannot change a remembered decision.
func TestRememberedDecisionsFollowEveryInput(t *testing.T) {
	e := sandbox(t)
	for i := 0; i < 3; i++ { // the second and third come from the memo
		if d := e.MayActFor(devAgent, alice); !d.Allow {
			t.Fatalf("round %d: %+v", i, d)
		}
		if d := e.MayActFor(blocked, alice); d.Allow {
			t.Fatalf("round %d: a blocked agent was allowed from the memo", i)
		}
		if d := e.MaxSpend(devAgent, alice, "cloudflare", 1000, "usd"); !d.Allow {
			t.Fatalf("round %d: a small budget was refused: %+v", i, d)
		}
		if d := e.MaxSpend(devAgent, alice, "cloudflare", math.MaxInt64, "usd"); d.Allow {
			t.Fatalf("round %d: an unbounded budget was allowed from the memo", i)
		}
	}
	spoofed := Agent{ID: "spiffe://evil.example/agent/x", Kind: KindDev, Attrs: map[string]string{"trust_domain": "tollgate.sandbox"}}
	if d := e.MayActFor(spoofed, alice); d.Allow {
		t.Fatal("attributes were not part of the memo's key")
	}
	d := e.MayActFor(blocked, alice)
	if len(d.PolicyIDs) > 0 {
		d.PolicyIDs[0] = "changed"
	}
	if again := e.MayActFor(blocked, alice); len(again.PolicyIDs) == 0 || again.PolicyIDs[0] != "forbid-blocked-agents" {
		t.Fatalf("a caller changed a remembered decision: %+v", again)
	}
}
