//go:build !nosandbox

package sts_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

const (
	issuer   = "http://127.0.0.1:7420"
	resource = issuer + "/mcp"
)

type fixture struct {
	t        *testing.T
	sts      *sts.STS
	dev      *auth.DevSigner
	idp      *auth.KeyRing
	access   *auth.AccessVerifier
	sessions *sessions.Store
	rdb      *redis.Client
	trail    *sessions.Audit
}

func newFixture(t *testing.T, pol *policy.Engine) *fixture {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { rdb.Close() })
	return newFixtureOn(t, rdb, pol)
}

func newFixtureOn(t *testing.T, rdb *redis.Client, pol *policy.Engine) *fixture {
	t.Helper()
	return newFixtureWith(t, rdb, pol, func(*sts.Config) {})
}

// newFixtureWith is newFixtureOn with a change to the STS's config.
func newFixtureWith(t *testing.T, rdb *redis.Client, pol *policy.Engine, change func(*sts.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	ring := func(ns auth.Namespace) *auth.KeyRing {
		k, err := auth.NewKeyRing(auth.KeyRingConfig{Namespace: ns, Redis: rdb})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Publish(ctx); err != nil {
			t.Fatal(err)
		}
		return k
	}
	keys := func(ns auth.Namespace) *auth.RedisKeys {
		k, err := auth.NewRedisKeys(auth.RedisKeysConfig{Namespace: ns, Redis: rdb})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	signer, idp, agent := ring(auth.NamespaceSTS), ring(auth.NamespaceDevIDP), ring(auth.NamespaceDevAgent)
	dev, err := auth.NewDevSigner(auth.DevSignerConfig{Issuer: issuer, IDP: idp, Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	access, err := auth.NewAccessVerifier(auth.AccessVerifierConfig{Issuer: issuer, Resource: resource, Keys: keys(auth.NamespaceSTS)})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := auth.NewDevSubjectVerifier(auth.DevVerifyConfig{Issuer: issuer, Keys: keys(auth.NamespaceDevIDP)})
	if err != nil {
		t.Fatal(err)
	}
	at, err := auth.NewDevAttestor(auth.DevVerifyConfig{Issuer: issuer, Keys: keys(auth.NamespaceDevAgent)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sessions.New(rdb, sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if pol == nil {
		if pol, err = policy.Sandbox(); err != nil {
			t.Fatal(err)
		}
	}
	trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sts.Config{Issuer: issuer, Resource: resource, TokenTTL: 10 * time.Minute, Sandbox: true}
	change(&cfg)
	s, err := sts.New(cfg,
		sts.Deps{Signer: signer, Access: access, Subjects: []*auth.SubjectVerifier{sv}, Attestors: []auth.Attestor{at}, Policy: pol, Sessions: store, Trail: trail})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, sts: s, dev: dev, idp: idp, access: access, sessions: store, rdb: rdb, trail: trail}
}

func (f *fixture) user(email string, scopes ...string) string {
	f.t.Helper()
	if len(scopes) == 0 {
		scopes = sts.KnownScopes()
	}
	tok, err := f.dev.UserToken(email, scopes, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) agent(name string) string {
	f.t.Helper()
	tok, err := f.dev.AgentToken(name, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// form builds a delegation request: subject (user or task token) + actor.
func form(subject, subjectType, actor string, kv ...string) url.Values {
	v := url.Values{
		"grant_type":         {sts.GrantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {subjectType},
	}
	if actor != "" {
		v.Set("actor_token", actor)
		v.Set("actor_token_type", sts.TokenTypeJWT)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func (f *fixture) exchange(v url.Values) (*sts.Response, *sts.Error) {
	f.t.Helper()
	req, e := sts.ParseRequest(v)
	if e != nil {
		return nil, e
	}
	resp, err := f.sts.Exchange(context.Background(), req)
	if err != nil {
		se, ok := err.(*sts.Error)
		if !ok {
			f.t.Fatalf("Exchange returned a non-OAuth error %T: %v", err, err)
		}
		return nil, se
	}
	return resp, nil
}

func (f *fixture) mustExchange(v url.Values) *sts.Response {
	f.t.Helper()
	resp, e := f.exchange(v)
	if e != nil {
		f.t.Fatalf("exchange refused: %v", e)
	}
	return resp
}

func (f *fixture) claims(tok string) *auth.Claims {
	f.t.Helper()
	c, err := f.access.Verify(context.Background(), tok)
	if err != nil {
		f.t.Fatalf("issued token does not verify: %v", err)
	}
	return c
}

const (
	idTok   = sts.TokenTypeIDToken
	taskTok = sts.TokenTypeAccessToken
	jwtTok  = sts.TokenTypeJWT
)

func TestDelegationIssuesANarrowTaskToken(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.mustExchange(form(f.user("alice@example.com"), idTok, f.agent("planner"),
		"scope", "dns:read dns:write", "authorization_details", `[{"type":"tollgate:resources","domains":["shop.example"]}]`))
	c := f.claims(resp.AccessToken)
	if c.Subject != "user:alice@example.com" || c.ClientID != auth.DevAgentID("planner") {
		t.Fatalf("sub %q client_id %q", c.Subject, c.ClientID)
	}
	if got := strings.Join(c.Act.Chain(), ","); got != auth.DevAgentID("planner") {
		t.Fatalf("act chain %q", got)
	}
	if c.Scope != "dns:read dns:write" || resp.Scope != c.Scope {
		t.Fatalf("scope %q / response %q", c.Scope, resp.Scope)
	}
	if d, ok := c.AuthorizationDetails.Domains(); !ok || strings.Join(d, ",") != "shop.example" {
		t.Fatalf("authorization_details domains %v", d)
	}
	if c.Audience != resource || c.Issuer != issuer || c.SessionID != resp.SessionID {
		t.Fatalf("aud %q iss %q sid %q", c.Audience, c.Issuer, c.SessionID)
	}
	if err := f.sessions.Check(context.Background(), c.Subject, c.SessionID, c.ID); err != nil {
		t.Fatalf("session not active: %v", err)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life > 10*time.Minute {
		t.Fatalf("lifetime %s beyond the TTL", life)
	}
}

func TestSubAgentChainAndNarrowing(t *testing.T) {
	f := newFixture(t, nil)
	parent := f.mustExchange(form(f.user("alice@example.com"), idTok, f.agent("planner"),
		"scope", "dns:read dns:write catalog:read",
		"authorization_details", `[{"type":"tollgate:resources","domains":["shop.example","blog.example"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]`))
	child := f.mustExchange(form(parent.AccessToken, taskTok, f.agent("deployer"), "scope", "dns:read"))
	c := f.claims(child.AccessToken)
	if got := c.Act.Chain(); len(got) != 2 || got[0] != auth.DevAgentID("deployer") || got[1] != auth.DevAgentID("planner") {
		t.Fatalf("chain %v, want deployer then planner", got)
	}
	if c.Subject != "user:alice@example.com" || c.ParentSessionID != parent.SessionID {
		t.Fatalf("sub %q parent_sid %q", c.Subject, c.ParentSessionID)
	}
	// What the child did not ask for, it inherits; it never gets more.
	if d, _ := c.AuthorizationDetails.Domains(); len(d) != 2 {
		t.Fatalf("inherited domains %v", d)
	}
	if b, ok := c.AuthorizationDetails.Budget("cloudflare"); !ok || b.Minor != 2000 {
		t.Fatalf("inherited budget %v %v", b, ok)
	}

	refusals := []struct {
		name string
		kv   []string
		code string
	}{
		{"scope widening at exchange", []string{"scope", "dns:read ssl:write"}, sts.ErrInvalidScope},
		{"unknown scope", []string{"scope", "admin"}, sts.ErrInvalidScope},
		{"domain widening at exchange", []string{"authorization_details", `[{"type":"tollgate:resources","domains":["evil.example"]}]`}, sts.ErrInvalidRequest},
		{"budget widening at exchange", []string{"authorization_details", `[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.01","currency":"usd"}]`}, sts.ErrInvalidRequest},
		{"budget in another currency", []string{"authorization_details", `[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"1.00","currency":"eur"}]`}, sts.ErrInvalidRequest},
		{"unknown authorization_details type", []string{"authorization_details", `[{"type":"tollgate:root"}]`}, sts.ErrInvalidRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, e := f.exchange(form(parent.AccessToken, taskTok, f.agent("deployer"), tc.kv...))
			if e == nil || e.Code != tc.code {
				t.Fatalf("got %v, want %s", e, tc.code)
			}
		})
	}
}

func TestDelegationChainLimits(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.mustExchange(form(f.user("alice@example.com"), idTok, f.agent("a1"))).AccessToken
	for i := 2; i <= 5; i++ {
		tok = f.mustExchange(form(tok, taskTok, f.agent("a"+string(rune('0'+i))))).AccessToken
	}
	if n := f.claims(tok).Act.Depth(); n != 5 {
		t.Fatalf("depth %d", n)
	}
	if _, e := f.exchange(form(tok, taskTok, f.agent("a6"))); e == nil || e.Code != sts.ErrInvalidRequest || !strings.Contains(e.Description, "at most 5") {
		t.Fatalf("chain depth 6: %v", e)
	}
	if _, e := f.exchange(form(tok, taskTok, f.agent("a3"))); e == nil || e.Code != sts.ErrInvalidRequest || !strings.Contains(e.Description, "loop") {
		t.Fatalf("agent already in the chain: %v", e)
	}
}

func TestExchangeAttacks(t *testing.T) {
	f := newFixture(t, nil)
	user := f.user("alice@example.com")
	narrowUser := f.user("bob@example.com", "catalog:read")
	agent := f.agent("planner")
	mayActOther := f.signUser(t, auth.SubjectClaims{Subject: "carol@example.com", MayAct: &auth.Actor{Sub: auth.DevAgentID("someone-else")}})
	expiring := f.signUserTTL(t, auth.SubjectClaims{Subject: "dave@example.com"}, 2*time.Minute)
	task := f.mustExchange(form(user, idTok, agent)).AccessToken

	tests := []struct {
		name string
		v    url.Values
		code string
	}{
		{"scope beyond the subject token", form(narrowUser, idTok, agent, "scope", "dns:write"), sts.ErrInvalidScope},
		{"no actor for a user subject", form(user, idTok, ""), sts.ErrInvalidRequest},
		{"user token as actor", form(user, idTok, user), sts.ErrInvalidRequest},
		{"task token as actor", form(user, idTok, task), sts.ErrInvalidRequest},
		{"attestation as id_token subject", form(agent, idTok, agent), sts.ErrInvalidRequest},
		{"task token declared as id_token", form(task, idTok, f.agent("other")), sts.ErrInvalidRequest},
		{"garbage subject", form("not.a.jwt", idTok, agent), sts.ErrInvalidRequest},
		{"resource of another server", form(user, idTok, agent, "resource", "https://evil.example/mcp"), sts.ErrInvalidTarget},
		{"resource prefix trick", form(user, idTok, agent, "resource", resource+".evil.example"), sts.ErrInvalidTarget},
		{"resource trailing slash", form(user, idTok, agent, "resource", resource+"/"), sts.ErrInvalidTarget},
		{"audience of another server", form(user, idTok, agent, "audience", "https://evil.example"), sts.ErrInvalidTarget},
		{"may_act not naming the actor", form(mayActOther, idTok, agent), sts.ErrInvalidGrant},
		{"impersonation not allowed by policy", form(f.agent("victim"), jwtTok, agent, "impersonate", "true"), sts.ErrUnauthorizedClient},
		{"impersonating a human", form(user, idTok, agent, "impersonate", "true"), sts.ErrInvalidRequest},
		{"blocked agent (forbid wins)", form(user, idTok, f.agent("blocked")), sts.ErrUnauthorizedClient},
		{"wrong grant type", url.Values{"grant_type": {"client_credentials"}}, sts.ErrUnsupportedGrantType},
		{"one token as both subject and actor", form(agent, jwtTok, agent), sts.ErrInvalidRequest},
		{"duplicate parameter", func() url.Values { v := form(user, idTok, agent); v.Add("scope", "a"); v.Add("scope", "b"); return v }(), sts.ErrInvalidRequest},
		{"unsupported requested_token_type", form(user, idTok, agent, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), sts.ErrInvalidRequest},
		{"budget above the policy's", form(user, idTok, agent, "authorization_details", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"100.01","currency":"usd"}]`), sts.ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, e := f.exchange(tc.v)
			if e == nil || e.Code != tc.code {
				t.Fatalf("got %v, want %s", e, tc.code)
			}
		})
	}

	t.Run("token lifetime never past the subject token", func(t *testing.T) {
		c := f.claims(f.mustExchange(form(expiring, idTok, agent)).AccessToken)
		if c.Expiry.Time().After(time.Now().Add(2*time.Minute + time.Second)) {
			t.Fatalf("exp %s is past the subject's", c.Expiry.Time())
		}
	})
	t.Run("self mode: an agent exchanges its own attestation", func(t *testing.T) {
		c := f.claims(f.mustExchange(form(f.agent("solo"), jwtTok, "", "scope", "catalog:read")).AccessToken)
		if c.Subject != auth.DevAgentID("solo") || c.Act != nil || c.ClientID != c.Subject {
			t.Fatalf("self-mode claims %+v", c)
		}
	})
	t.Run("a revoked parent cannot delegate", func(t *testing.T) {
		parent := f.mustExchange(form(user, idTok, f.agent("p")))
		c := f.claims(parent.AccessToken)
		if _, err := f.sessions.Revoke(context.Background(), c.Subject, c.SessionID, "test"); err != nil {
			t.Fatal(err)
		}
		if _, e := f.exchange(form(parent.AccessToken, taskTok, f.agent("q"))); e == nil || e.Code != sts.ErrInvalidGrant {
			t.Fatalf("got %v, want invalid_grant", e)
		}
	})
}

// TestSelfModeAsksThePolicy: an agent acting as its own principal is
// refused where the policy does not permit it.
func TestSelfModeAsksThePolicy(t *testing.T) {
	pol, err := policy.Parse("scopes-only.cedar", []byte(`
@id("scopes")
permit (principal is Tollgate::Agent, action == Tollgate::Action::"use_scope", resource is Tollgate::Scope);
`))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, pol)
	if _, e := f.exchange(form(f.agent("solo"), jwtTok, "", "scope", "catalog:read")); e == nil || e.Code != sts.ErrUnauthorizedClient {
		t.Fatalf("self mode without an act_for permit: %v", e)
	}
}

func TestImpersonationOnlyForTheNamedPair(t *testing.T) {
	src := `
@id("deploy-as-builder")
permit (principal == Tollgate::Agent::"spiffe://tollgate.sandbox/agent/deployer",
        action == Tollgate::Action::"impersonate",
        resource == Tollgate::Agent::"spiffe://tollgate.sandbox/agent/builder");
@id("scopes")
permit (principal is Tollgate::Agent, action == Tollgate::Action::"use_scope", resource is Tollgate::Scope);
`
	pol, err := policy.Parse("impersonate.cedar", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, pol)
	resp := f.mustExchange(form(f.agent("builder"), jwtTok, f.agent("deployer"), "impersonate", "true", "scope", "catalog:read"))
	c := f.claims(resp.AccessToken)
	if c.Subject != auth.DevAgentID("builder") || c.Act == nil || c.Act.Sub != auth.DevAgentID("deployer") {
		t.Fatalf("impersonation claims: sub %q act %+v (the real caller must stay in act)", c.Subject, c.Act)
	}
	if _, e := f.exchange(form(f.agent("deployer"), jwtTok, f.agent("builder"), "impersonate", "true")); e == nil || e.Code != sts.ErrUnauthorizedClient {
		t.Fatalf("the reverse pair: %v", e)
	}
}

func TestRedisDownRefuses(t *testing.T) {
	rdb := testkit.Redis(t)
	f := newFixtureOn(t, rdb, nil)
	user, agent := f.user("alice@example.com"), f.agent("planner")
	rdb.Close()
	_, e := f.exchange(form(user, idTok, agent))
	if e == nil || e.Code != sts.ErrUnavailable || e.Status != 503 {
		t.Fatalf("got %v, want temporarily_unavailable 503", e)
	}
}

func (f *fixture) signUser(t *testing.T, c auth.SubjectClaims) string {
	return f.signUserTTL(t, c, time.Hour)
}

func (f *fixture) signUserTTL(t *testing.T, c auth.SubjectClaims, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	c.Issuer = auth.DevIDPIssuer(issuer)
	c.Audience = jwt.Audience{issuer}
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(ttl))
	c.ID = "jti-" + c.Subject
	c.Email = c.Subject
	tok, err := f.idp.Sign(c, auth.TypJWT)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestExchangesAreAudited: allowed and refused exchanges land in the
// hash-chained trail with the policy that decided.
func TestExchangesAreAudited(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.mustExchange(form(f.user("alice@example.com"), idTok, f.agent("planner")))
	if _, e := f.exchange(form(f.user("alice@example.com"), idTok, f.agent("blocked"))); e == nil {
		t.Fatal("blocked agent was allowed")
	}
	got, err := f.trail.ForSessions(context.Background(), map[string]string{resp.SessionID: "user:alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	es := got[resp.SessionID]
	if len(es) != 1 || es[0].Event != "exchange" || es[0].Decision != "allow" || len(es[0].PolicyIDs) == 0 ||
		es[0].Principal != "user:alice@example.com" || es[0].ClientID != auth.DevAgentID("planner") {
		t.Fatalf("exchange entry %+v", es)
	}
	var buf strings.Builder
	if _, err := f.trail.Export(context.Background(), &buf, sessions.ExportFilter{Principal: "user:alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"decision":"deny"`) || !strings.Contains(buf.String(), "forbid-blocked-agents") {
		t.Fatalf("refused exchange not recorded with its policy: %s", buf.String())
	}
	if v, err := f.trail.Verify(context.Background(), nil); err != nil || !v.OK {
		t.Fatalf("verify: %+v %v", v, err)
	}
}

// TestMayActTravelsDownTheChain: a user token's may_act names the agent
// allowed to act for the user and, nested, who may act after it; nobody
// else can join the chain further down.
func TestMayActTravelsDownTheChain(t *testing.T) {
	f := newFixture(t, nil)
	planner, deployer := auth.DevAgentID("planner"), auth.DevAgentID("deployer")

	onlyPlanner := f.signUser(t, auth.SubjectClaims{Subject: "erin@example.com", MayAct: &auth.Actor{Sub: planner}})
	tok := f.mustExchange(form(onlyPlanner, idTok, f.agent("planner"))).AccessToken
	if _, e := f.exchange(form(tok, taskTok, f.agent("deployer"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("a sub-agent joined where may_act allowed nobody further: %v", e)
	}

	plannerThenDeployer := f.signUser(t, auth.SubjectClaims{Subject: "fay@example.com", MayAct: &auth.Actor{Sub: planner, Act: &auth.Actor{Sub: deployer}}})
	tok = f.mustExchange(form(plannerThenDeployer, idTok, f.agent("planner"))).AccessToken
	if _, e := f.exchange(form(tok, taskTok, f.agent("other"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("an agent may_act does not name joined: %v", e)
	}
	sub := f.mustExchange(form(tok, taskTok, f.agent("deployer"))).AccessToken
	if _, e := f.exchange(form(sub, taskTok, f.agent("third"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("a third agent joined after the named ones: %v", e)
	}
}
