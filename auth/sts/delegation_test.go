//go:build !nosandbox

package sts_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
	"github.com/tollgate-dev/tollgate/auth/sts"
)

// TestDelegationOnlyNarrows: whatever a subject token grants (scope,
// domains, a budget per provider, lifetime, room in the chain, may_act), a
// token exchanged from it holds the same or less, in every grant mode. A
// user token or an agent's own attestation is a root: its first task token
// is bounded by policy. An upstream task token is a ceiling, its absences
// included: what the parent lacks, a sub-agent cannot get.
//
// Every issued row asserts the whole issued token (see render), so a row
// about budgets also proves the scope, domains, chain and lifetime did not
// widen on the way.
func TestDelegationOnlyNarrows(t *testing.T) {
	f := newFixture(t, sandboxWithImpersonation(t))
	alice := f.user("alice@example.com")
	exchange := func(subject, subjectType, actor string, kv ...string) string {
		t.Helper()
		return f.mustExchange(form(subject, subjectType, actor, kv...)).AccessToken
	}
	resources := func(domains ...string) string {
		return `{"type":"tollgate:resources","domains":["` + strings.Join(domains, `","`) + `"]}`
	}
	spend := func(provider, amount, currency string) string {
		return `{"type":"tollgate:spend","provider":"` + provider + `","max_amount":"` + amount + `","currency":"` + currency + `"}`
	}
	details := func(entries ...string) []string {
		return []string{"authorization_details", "[" + strings.Join(entries, ",") + "]"}
	}
	with := func(kv ...[]string) []string {
		var out []string
		for _, x := range kv {
			out = append(out, x...)
		}
		return out
	}
	scope := func(s string) []string { return []string{"scope", s} }
	impersonate := []string{"impersonate", "true"}

	// Parents: one that has everything, one that lacks everything, one that
	// holds less (fewer scopes and domains, a smaller cloudflare budget and
	// no stripe budget at all).
	full := exchange(alice, idTok, f.agent("planner"), with(scope("catalog:read dns:read dns:write"),
		details(resources("shop.example", "blog.example"), spend("cloudflare", "20.00", "usd"), spend("stripe", "10.00", "usd")))...)
	bare := exchange(alice, idTok, f.agent("planner"), scope("catalog:read dns:read")...)
	less := exchange(alice, idTok, f.agent("planner"), with(scope("dns:read"),
		details(resources("shop.example"), spend("cloudflare", "5.00", "usd")))...)

	narrowUser := f.user("bob@example.com", "catalog:read")
	shortUser := f.signUserTTL(t, auth.SubjectClaims{Subject: "dave@example.com"}, 2*time.Minute)
	shortParent := exchange(shortUser, idTok, f.agent("planner"), scope("catalog:read")...)

	chain4 := exchange(alice, idTok, f.agent("a1"))
	for _, a := range []string{"a2", "a3", "a4"} {
		chain4 = exchange(chain4, taskTok, f.agent(a))
	}
	chain5 := exchange(chain4, taskTok, f.agent("a5"))

	// may_act: planner, then deployer, then third; nobody after them.
	planner, deployer, third := auth.DevAgentID("planner"), auth.DevAgentID("deployer"), auth.DevAgentID("third")
	mayActUser := f.signUser(t, auth.SubjectClaims{Subject: "fay@example.com",
		MayAct: &auth.Actor{Sub: planner, Act: &auth.Actor{Sub: deployer, Act: &auth.Actor{Sub: third}}}})
	onlyOtherUser := f.signUser(t, auth.SubjectClaims{Subject: "gus@example.com", MayAct: &auth.Actor{Sub: auth.DevAgentID("someone-else")}})
	mayActParent := exchange(mayActUser, idTok, f.agent("planner"))
	mayActLast := exchange(mayActParent, taskTok, f.agent("deployer"))
	mayActNobody := exchange(mayActLast, taskTok, f.agent("third"))

	// builder's attestation is a root subject; its self-mode token (a
	// cloudflare budget, no stripe budget, no domains) is a parent.
	builder := f.agent("builder")
	builderTask := exchange(builder, jwtTok, "", with(scope("catalog:read dns:read"), details(spend("cloudflare", "5.00", "usd")))...)

	// Signed last: it must still be valid, but too close to its exp for a
	// task token, when its row runs.
	dyingUser := f.signUserTTL(t, auth.SubjectClaims{Subject: "erin@example.com"}, 5*time.Second)

	type row struct {
		name        string
		subject     string
		subjectType string
		actor       string // dev agent name; "" for self mode
		kv          []string
		code        string // the OAuth error; "" when a token is issued
		issued      string // render of the issued token
		says        string // the exact error_description, where the review asked for one
	}

	rows := []row{
		// scope: issued = requested ∩ subject ∩ policy; beyond → invalid_scope.
		{name: "scope: user's first task token gets the scopes it asks for", subject: alice, subjectType: idTok, actor: "planner", kv: scope("dns:read dns:write"),
			issued: "scope=dns:read dns:write domains=- cloudflare=- stripe=- actors=planner may_act=- exp=ttl"},
		{name: "scope: sub-agent asks for a subset of its parent's scopes", subject: full, subjectType: taskTok, actor: "deployer", kv: scope("dns:write"),
			issued: "scope=dns:write domains=shop.example,blog.example cloudflare=20.00 USD stripe=10.00 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "scope: sub-agent names no scope and inherits its parent's, no more", subject: full, subjectType: taskTok, actor: "deployer",
			issued: "scope=catalog:read dns:read dns:write domains=shop.example,blog.example cloudflare=20.00 USD stripe=10.00 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "scope: sub-agent asks for a scope its parent lacks", subject: bare, subjectType: taskTok, actor: "deployer", kv: scope("dns:write"), code: sts.ErrInvalidScope},
		{name: "scope: sub-agent asks for more scopes than its parent holds", subject: less, subjectType: taskTok, actor: "deployer", kv: scope("dns:read catalog:read"), code: sts.ErrInvalidScope},
		{name: "scope: agent asks beyond a user token's scopes", subject: narrowUser, subjectType: idTok, actor: "planner", kv: scope("catalog:read dns:write"), code: sts.ErrInvalidScope},

		// tollgate:resources: a subset of the parent's domains; none under a read-only parent.
		{name: "domains: user's first task token may name any domains", subject: alice, subjectType: idTok, actor: "planner", kv: with(scope("dns:write"), details(resources("anything.example"))),
			issued: "scope=dns:write domains=anything.example cloudflare=- stripe=- actors=planner may_act=- exp=ttl"},
		{name: "domains: sub-agent names a subset of its parent's domains", subject: full, subjectType: taskTok, actor: "deployer", kv: with(scope("dns:write"), details(resources("shop.example"))),
			issued: "scope=dns:write domains=shop.example cloudflare=20.00 USD stripe=10.00 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "domains: sub-agent names none and inherits its parent's", subject: full, subjectType: taskTok, actor: "deployer", kv: with(scope("dns:read"), details(spend("cloudflare", "1.00", "usd"))),
			issued: "scope=dns:read domains=shop.example,blog.example cloudflare=1.00 USD stripe=10.00 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "domains: sub-agent names a domain outside its parent's", subject: less, subjectType: taskTok, actor: "deployer", kv: details(resources("blog.example")), code: sts.ErrInvalidRequest},
		{name: "domains: sub-agent names its parent's domain and one more", subject: less, subjectType: taskTok, actor: "deployer", kv: details(resources("shop.example", "evil.example")), code: sts.ErrInvalidRequest},
		{name: "domains: sub-agent of a read-only parent names a domain to write to", subject: bare, subjectType: taskTok, actor: "deployer", kv: details(resources("shop.example")), code: sts.ErrInvalidRequest,
			says: "authorization_details: the parent task token names no domains in tollgate:resources (it may only read its own account), so a sub-agent cannot name shop.example; ask without tollgate:resources; nothing was issued"},
		{name: "domains: sub-agent of a read-only parent stays read-only", subject: bare, subjectType: taskTok, actor: "deployer", kv: details(),
			issued: "scope=catalog:read dns:read domains=- cloudflare=- stripe=- actors=deployer,planner may_act=- exp=subject"},

		// tollgate:spend, cloudflare: carved from the parent's entry, same currency, no more.
		{name: "cloudflare: user's first task token gets the budget policy allows", subject: alice, subjectType: idTok, actor: "planner", kv: with(scope("dns:read"), details(spend("cloudflare", "100.00", "usd"))),
			issued: "scope=dns:read domains=- cloudflare=100.00 USD stripe=- actors=planner may_act=- exp=ttl"},
		{name: "cloudflare: user's first task token asks above the policy's budget", subject: alice, subjectType: idTok, actor: "planner", kv: details(spend("cloudflare", "100.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "cloudflare: sub-agent carves a smaller budget from its parent's", subject: full, subjectType: taskTok, actor: "deployer", kv: with(scope("dns:read"), details(spend("cloudflare", "5.00", "usd"))),
			issued: "scope=dns:read domains=shop.example,blog.example cloudflare=5.00 USD stripe=10.00 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "cloudflare: sub-agent takes its parent's whole budget", subject: less, subjectType: taskTok, actor: "deployer", kv: details(spend("cloudflare", "5.00", "usd")),
			issued: "scope=dns:read domains=shop.example cloudflare=5.00 USD stripe=- actors=deployer,planner may_act=- exp=subject"},
		{name: "cloudflare: sub-agent asks one cent more than its parent holds", subject: less, subjectType: taskTok, actor: "deployer", kv: details(spend("cloudflare", "5.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "cloudflare: sub-agent asks for a budget its parent lacks", subject: bare, subjectType: taskTok, actor: "deployer", kv: details(spend("cloudflare", "1.00", "usd")), code: sts.ErrInvalidRequest},
		{name: "cloudflare: sub-agent asks for its parent's budget in another currency", subject: full, subjectType: taskTok, actor: "deployer", kv: details(spend("cloudflare", "1.00", "eur")), code: sts.ErrInvalidRequest},

		// tollgate:spend, stripe: likewise, per provider.
		{name: "stripe: user's first task token asks above the policy's budget", subject: alice, subjectType: idTok, actor: "planner", kv: details(spend("stripe", "100.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "stripe: sub-agent carves a smaller budget from its parent's", subject: full, subjectType: taskTok, actor: "deployer", kv: with(scope("catalog:read"), details(spend("stripe", "2.50", "usd"))),
			issued: "scope=catalog:read domains=shop.example,blog.example cloudflare=20.00 USD stripe=2.50 USD actors=deployer,planner may_act=- exp=subject"},
		{name: "stripe: sub-agent asks for more than its parent holds", subject: full, subjectType: taskTok, actor: "deployer", kv: details(spend("stripe", "10.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "stripe: sub-agent asks for a budget its parent lacks (parent has only cloudflare)", subject: less, subjectType: taskTok, actor: "deployer", kv: details(spend("stripe", "1.00", "usd")), code: sts.ErrInvalidRequest,
			says: "authorization_details: the parent task token has no stripe budget (no tollgate:spend for stripe), so a sub-agent cannot have one; ask without it; nothing was issued"},
		{name: "stripe: sub-agent asks for a budget under a parent with no budget at all", subject: bare, subjectType: taskTok, actor: "deployer", kv: details(spend("stripe", "0.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "stripe: sub-agent of a parent without one gets none by staying silent", subject: less, subjectType: taskTok, actor: "deployer", kv: details(resources("shop.example")),
			issued: "scope=dns:read domains=shop.example cloudflare=5.00 USD stripe=- actors=deployer,planner may_act=- exp=subject"},

		// expiry: never past the subject token's exp.
		{name: "expiry: user token with the full hour gives the first task token the TTL", subject: alice, subjectType: idTok, actor: "planner", kv: scope("catalog:read"),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=planner may_act=- exp=ttl"},
		{name: "expiry: user token expiring before the TTL caps the first task token", subject: shortUser, subjectType: idTok, actor: "planner", kv: scope("catalog:read"),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=planner may_act=- exp=subject"},
		{name: "expiry: sub-agent never outlives a parent that expires sooner", subject: shortParent, subjectType: taskTok, actor: "deployer",
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=deployer,planner may_act=- exp=subject"},
		{name: "expiry: a subject about to expire issues nothing", subject: dyingUser, subjectType: idTok, actor: "planner", code: sts.ErrInvalidGrant},

		// depth: at most five actors; nobody twice.
		{name: "depth: a fifth actor joins a chain of four", subject: chain4, subjectType: taskTok, actor: "a5", kv: scope("catalog:read"),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=a5,a4,a3,a2,a1 may_act=- exp=subject"},
		{name: "depth: a sixth actor is refused", subject: chain5, subjectType: taskTok, actor: "a6", code: sts.ErrInvalidRequest},
		{name: "depth: an agent already in the chain rejoins (a loop)", subject: chain4, subjectType: taskTok, actor: "a2", code: sts.ErrInvalidRequest},
		{name: "depth: an agent acts for its own self-mode token (a loop)", subject: builderTask, subjectType: taskTok, actor: "builder", code: sts.ErrInvalidRequest},

		// may_act: must name the actor; the nested may_act travels down.
		{name: "may_act: the named sub-agent joins and the nested may_act travels down", subject: mayActParent, subjectType: taskTok, actor: "deployer", kv: scope("catalog:read"),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=deployer,planner may_act=third exp=subject"},
		{name: "may_act: an agent the parent's may_act does not name", subject: mayActParent, subjectType: taskTok, actor: "third", code: sts.ErrInvalidGrant},
		{name: "may_act: the last named agent joins and nobody may follow", subject: mayActLast, subjectType: taskTok, actor: "third", kv: scope("catalog:read"),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=- actors=third,deployer,planner may_act=nobody exp=subject"},
		{name: "may_act: an agent joins after the last named one", subject: mayActNobody, subjectType: taskTok, actor: "fourth", code: sts.ErrInvalidGrant},
		{name: "may_act: a user token's may_act names another agent", subject: onlyOtherUser, subjectType: idTok, actor: "planner", code: sts.ErrInvalidGrant},

		// self mode: the agent's own attestation is a root (policy bounds
		// it); its task token is a ceiling for its sub-agents.
		{name: "self mode: an agent's first own token gets the budget policy allows", subject: f.agent("solo"), subjectType: jwtTok, kv: with(scope("catalog:read"), details(spend("stripe", "3.00", "usd"))),
			issued: "scope=catalog:read domains=- cloudflare=- stripe=3.00 USD actors=- may_act=- exp=ttl"},
		{name: "self mode: an agent's first own token asks above the policy's budget", subject: f.agent("solo"), subjectType: jwtTok, kv: details(spend("stripe", "100.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "self mode: sub-agent of a self-mode token carves its cloudflare budget", subject: builderTask, subjectType: taskTok, actor: "helper", kv: details(spend("cloudflare", "2.00", "usd")),
			issued: "scope=catalog:read dns:read domains=- cloudflare=2.00 USD stripe=- actors=helper may_act=- exp=subject"},
		{name: "self mode: sub-agent of a self-mode token asks for more cloudflare than it holds", subject: builderTask, subjectType: taskTok, actor: "helper", kv: details(spend("cloudflare", "5.01", "usd")), code: sts.ErrInvalidRequest},
		{name: "self mode: sub-agent of a self-mode token asks for a stripe budget it lacks", subject: builderTask, subjectType: taskTok, actor: "helper", kv: details(spend("stripe", "1.00", "usd")), code: sts.ErrInvalidRequest},
		{name: "self mode: sub-agent of a read-only self-mode token names a domain", subject: builderTask, subjectType: taskTok, actor: "helper", kv: details(resources("shop.example")), code: sts.ErrInvalidRequest},
		{name: "self mode: sub-agent of a self-mode token asks for a scope it lacks", subject: builderTask, subjectType: taskTok, actor: "helper", kv: scope("dns:write"), code: sts.ErrInvalidScope},

		// impersonation (policy names deployer → builder): acting as a task
		// token's agent holds no more than that token.
		{name: "impersonation: acting as a task token inherits its grants, no more", subject: builderTask, subjectType: taskTok, actor: "deployer", kv: impersonate,
			issued: "scope=catalog:read dns:read domains=- cloudflare=5.00 USD stripe=- actors=deployer may_act=- exp=subject"},
		{name: "impersonation: acting as a task token asks for a stripe budget it lacks", subject: builderTask, subjectType: taskTok, actor: "deployer", kv: with(impersonate, details(spend("stripe", "1.00", "usd"))), code: sts.ErrInvalidRequest},
		{name: "impersonation: acting as a task token asks for more cloudflare than it holds", subject: builderTask, subjectType: taskTok, actor: "deployer", kv: with(impersonate, details(spend("cloudflare", "5.01", "usd"))), code: sts.ErrInvalidRequest},
		{name: "impersonation: acting as a read-only task token names a domain", subject: builderTask, subjectType: taskTok, actor: "deployer", kv: with(impersonate, details(resources("shop.example"))), code: sts.ErrInvalidRequest},
		{name: "impersonation: acting as a task token asks for a scope it lacks", subject: builderTask, subjectType: taskTok, actor: "deployer", kv: with(impersonate, scope("dns:write")), code: sts.ErrInvalidScope},
		{name: "impersonation: acting as an attested agent is bounded by policy", subject: builder, subjectType: jwtTok, actor: "deployer", kv: with(impersonate, details(spend("stripe", "100.01", "usd"))), code: sts.ErrInvalidRequest},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			actor := ""
			if tc.actor != "" {
				actor = f.agent(tc.actor)
			}
			resp, e := f.exchange(form(tc.subject, tc.subjectType, actor, tc.kv...))
			if tc.code != "" {
				if e == nil {
					t.Fatalf("issued %q, want %s", render(f.claims(resp.AccessToken), expiryOf(t, tc.subject)), tc.code)
				}
				if e.Code != tc.code {
					t.Fatalf("got %s (%s), want %s", e.Code, e.Description, tc.code)
				}
				if tc.says != "" && e.Description != tc.says {
					t.Fatalf("error_description\n  %s\nwant\n  %s", e.Description, tc.says)
				}
				return
			}
			if e != nil {
				t.Fatalf("refused %s (%s), want issued %q", e.Code, e.Description, tc.issued)
			}
			if got := render(f.claims(resp.AccessToken), expiryOf(t, tc.subject)); got != tc.issued {
				t.Fatalf("issued\n  %s\nwant\n  %s", got, tc.issued)
			}
		})
	}
}

// sandboxWithImpersonation is the sandbox policy plus one named pair:
// deployer may impersonate builder.
func sandboxWithImpersonation(t *testing.T) *policy.Engine {
	t.Helper()
	src, err := os.ReadFile("../policy/sandbox.cedar")
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, `
@id("deployer-as-builder")
permit (principal == Tollgate::Agent::"spiffe://tollgate.sandbox/agent/deployer",
        action == Tollgate::Action::"impersonate",
        resource == Tollgate::Agent::"spiffe://tollgate.sandbox/agent/builder");
`...)
	pol, err := policy.Parse("sandbox+impersonation.cedar", src)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// render describes everything an issued token grants, in one line: scope,
// domains, the budget per provider, the act chain (dev agent names, current
// first), the may_act it carries down, and its exp: "subject" when it is the
// subject token's, "ttl" when the STS's own 10 minutes, else how far it
// reaches past the subject's (a widening).
func render(c *auth.Claims, subjectExp time.Time) string {
	short := func(id string) string { return strings.TrimPrefix(id, auth.DevAgentID("")) }
	domains := "-"
	if d, ok := c.AuthorizationDetails.Domains(); ok {
		domains = strings.Join(d, ",")
	}
	budget := func(p string) string {
		if m, ok := c.AuthorizationDetails.Budget(p); ok {
			return m.String()
		}
		return "-"
	}
	actors := "-"
	if ch := c.Act.Chain(); len(ch) > 0 {
		for i := range ch {
			ch[i] = short(ch[i])
		}
		actors = strings.Join(ch, ",")
	}
	mayAct := "-"
	if c.MayAct != nil {
		var names []string
		for _, id := range c.MayAct.Chain() {
			if strings.HasPrefix(id, "urn:tollgate:") {
				id = "nobody"
			}
			names = append(names, short(id))
		}
		mayAct = strings.Join(names, ",")
	}
	exp := c.Expiry.Time()
	var life string
	switch {
	case exp.After(subjectExp):
		life = fmt.Sprintf("%s-past-the-subject", exp.Sub(subjectExp))
	case exp.Equal(subjectExp):
		life = "subject"
	case exp.Sub(c.IssuedAt.Time()) == 10*time.Minute:
		life = "ttl"
	default:
		life = exp.Sub(c.IssuedAt.Time()).String()
	}
	return fmt.Sprintf("scope=%s domains=%s cloudflare=%s stripe=%s actors=%s may_act=%s exp=%s",
		c.Scope, domains, budget("cloudflare"), budget("stripe"), actors, mayAct, life)
}

// expiryOf reads a subject token's exp without verifying it (the exchange
// under test did that).
func expiryOf(t *testing.T, tok string) time.Time {
	t.Helper()
	p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := p.UnsafeClaimsWithoutVerification(&c); err != nil || c.Expiry == nil {
		t.Fatalf("subject token without exp: %v", err)
	}
	return c.Expiry.Time()
}
