//go:build !nosandbox

package compose

// The sandbox, behind one seam: the fake Cloudflare and Stripe, what the
// dev endpoints and shortcuts do with them, the dev identity's signer and
// its OpenID provider (the approvals page's sign-in).
// The embedded Redis is redisconn's (embedded.go). A production build,
// go build -tags nosandbox ./cmd/tollgate, links none of it
// (sandbox_off.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/auth"
	fakecf "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/fixtures/idp"
	fakestripe "github.com/tollgate-dev/tollgate/fixtures/stripe"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/web/approvals"
	"github.com/tollgate-dev/tollgate/web/flows"
)

// SandboxBuilt reports whether this binary has the sandbox.
const SandboxBuilt = true

// ErrNoSandbox is what a production build answers at every sandbox entry
// point (sandbox_off.go); this build never returns it.
var ErrNoSandbox = errors.New("this tollgate binary was built without the sandbox")

// sandboxParts are the sandbox's fake providers, each on a loopback
// httptest server, or another sandbox replica's (cf and stripe nil).
type sandboxParts struct {
	cf         *fakecf.Fake
	stripe     *fakestripe.Fake
	cfBase     string
	stripeBase string
	// clock is the Stripe test clock every sandbox customer lives on
	// (`tollgate dev advance` moves it).
	clock string
	stop  func()
}

// sandboxWebhookSecret signs the sandbox fake's Stripe events; the
// sandbox's webhook endpoint verifies with it unless
// --stripe-webhook-secret is given. Not a credential anywhere else.
const sandboxWebhookSecret = "whsec_tollgate_sandbox"

func startSandbox(cfg config.Config) (*sandboxParts, error) {
	if cfg.SandboxProvidersFrom != "" {
		return remoteSandbox(cfg.SandboxProvidersFrom)
	}
	s := &sandboxParts{
		// The fake's own API token is never handed to tollgate.
		cf: fakecf.New(fakecf.Config{StatusPolls: 2,
			Accounts: sandboxCloudflareAccounts, OAuthClients: sandboxOAuthClients(cfg.PublicURL)}),
		stripe: fakestripe.New(fakestripe.Config{SecretKey: sandboxStripeKey,
			Webhook: fakestripe.Webhook{URL: strings.TrimRight(cfg.PublicURL, "/") + "/webhooks/stripe", Secret: sandboxWebhookSecret}}),
	}
	s.clock = s.stripe.NewClock(time.Now(), "tollgate sandbox")
	cfSrv, stripeSrv := httptest.NewServer(s.cf), httptest.NewServer(s.stripe)
	s.cfBase, s.stripeBase = cfSrv.URL, stripeSrv.URL
	s.stop = func() { cfSrv.Close(); stripeSrv.Close() }
	return s, nil
}

// remoteSandbox asks the sandbox replica at base where its fakes listen
// (GET /dev/providers), so that this replica acts on the same fake
// accounts (--sandbox-providers-from).
func remoteSandbox(base string) (*sandboxParts, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(strings.TrimRight(base, "/") + "/dev/providers")
	if err != nil {
		return nil, fmt.Errorf("--sandbox-providers-from %s: %w; start that sandbox first", base, err)
	}
	defer res.Body.Close()
	var p struct {
		Cloudflare, Stripe string
		Clock              string `json:"stripe_clock"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&p); err != nil || res.StatusCode != http.StatusOK || p.Cloudflare == "" || p.Stripe == "" {
		return nil, fmt.Errorf("--sandbox-providers-from %s: not a tollgate sandbox that runs its own fakes (HTTP %d)", base, res.StatusCode)
	}
	return &sandboxParts{cfBase: p.Cloudflare, stripeBase: p.Stripe, clock: p.Clock, stop: func() {}}, nil
}

func (s *sandboxParts) stripeClock() string   { return s.clock }
func (s *sandboxParts) webhookSecret() string { return sandboxWebhookSecret }

func (s *sandboxParts) cloudflareURL() string { return s.cfBase }
func (s *sandboxParts) stripeURL() string     { return s.stripeBase }

func (s *sandboxParts) oauthEndpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: s.cfBase + fakecf.AuthPath, TokenURL: s.cfBase + fakecf.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}
}

func (s *sandboxParts) close() { s.stop() }

// FakeCloudflare is the sandbox's fake Cloudflare (nil in production), for
// tests that assert what reached the provider.
func (a *App) FakeCloudflare() *fakecf.Fake {
	if a.sandbox == nil || a.sandbox.cf == nil {
		return nil
	}
	return a.sandbox.cf
}

// FakeStripe is the sandbox's fake Stripe (nil in production).
func (a *App) FakeStripe() *fakestripe.Fake {
	if a.sandbox == nil || a.sandbox.stripe == nil {
		return nil
	}
	return a.sandbox.stripe
}

// newDevSigner is the dev identity's signer: user tokens for any e-mail
// and attestations for any agent name.
func newDevSigner(issuer string, idp, agent *auth.KeyRing) (devIdentity, error) {
	return auth.NewDevSigner(auth.DevSignerConfig{Issuer: issuer, IDP: idp, Agent: agent})
}

// The approvals page's client at the sandbox's OpenID provider; not a
// credential anywhere else.
const (
	sandboxIDPClientID     = "tollgate-approvals"
	sandboxIDPClientSecret = "tollgate-sandbox-idp-secret"
)

// newDevIDP is the sandbox's OpenID provider, at auth.DevIDPIssuer of the
// public URL, signing ID tokens with the dev-idp key ring (so its JWKS is
// the ring's published keys). Its one client is the approvals page.
func newDevIDP(publicURL string, ring *auth.KeyRing) (http.Handler, error) {
	return idp.New(idp.Config{Issuer: auth.DevIDPIssuer(publicURL), Signer: ring, Clients: []idp.Client{{
		ID: sandboxIDPClientID, Secret: sandboxIDPClientSecret, RedirectURIs: []string{publicURL + approvals.CallbackPath}}}})
}

// devSignIn is the approvals page's sign-in at the sandbox's OpenID
// provider, in sandbox mode.
func devSignIn(cfg config.Config) (signin.Config, bool) {
	if cfg.Mode != config.Sandbox {
		return signin.Config{}, false
	}
	return signin.Config{Issuer: auth.DevIDPIssuer(cfg.PublicURL), ClientID: sandboxIDPClientID, ClientSecret: sandboxIDPClientSecret}, true
}

// sandboxRoutes adds the dev identity's endpoints, the sandbox's OpenID
// provider and the dev endpoints that read or change the fakes. A replica
// that uses another's fakes has none of the latter: ask that one.
func (a *App) sandboxRoutes(mux *http.ServeMux) {
	// The dev identity and the embedded Redis's URL (dev.go).
	mux.HandleFunc("POST /dev/login", a.devOnly(a.devLogin))
	mux.HandleFunc("POST /dev/agent-token", a.devOnly(a.devAgentToken))
	mux.HandleFunc("GET /dev/redis", a.devOnly(a.devRedis))
	if a.id.devIDP != nil {
		// Like the dev IdP's other endpoints: sandbox and loopback only.
		const prefix = "/dev/idp"
		mux.HandleFunc(prefix+"/", a.devOnly(http.StripPrefix(prefix, a.id.devIDP).ServeHTTP))
	}
	if a.sandbox == nil || a.sandbox.cf == nil {
		return
	}
	mux.HandleFunc("GET /dev/providers", a.devOnly(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"cloudflare": a.sandbox.cfBase, "stripe": a.sandbox.stripeBase, "stripe_clock": a.sandbox.clock})
	}))
	mux.HandleFunc("POST /dev/stripe/advance", a.devOnly(a.devAdvance))
	mux.HandleFunc("GET /dev/cloudflare/charges", a.devOnly(a.devCloudflareCharges))
	mux.HandleFunc("GET /dev/cloudflare/scripts", a.devOnly(a.devCloudflareScripts))
	mux.HandleFunc("POST /dev/cloudflare/link", a.devOnly(a.devLinkCloudflare))
}

// sandboxCloudflareAccounts are the people with a Cloudflare account in the
// sandbox's fake, found by e-mail at consent.
var sandboxCloudflareAccounts = []fakecf.Account{{Name: "Alice's projects", Email: "alice@example.com"}}

// sandboxOAuthClients registers tollgate at the sandbox's fake Cloudflare.
func sandboxOAuthClients(publicURL string) []fakecf.OAuthClient {
	return []fakecf.OAuthClient{{ID: sandboxOAuthClientID, Secret: sandboxOAuthClientSecret, Name: "tollgate (sandbox)",
		RedirectURIs: []string{publicURL + flows.CallbackPath + "/cloudflare"}}}
}

// devCloudflareCharges serves GET /dev/cloudflare/charges: what the
// sandbox's fake Cloudflare has charged, so a script (or a test across
// processes, or tollgate spend reconcile --provider cloudflare) can
// compare the ledger with the provider's own record. month is the UTC
// month the fake's clock charged in.
func (a *App) devCloudflareCharges(w http.ResponseWriter, r *http.Request) {
	type charge struct {
		Domain         string `json:"domain"`
		Years          int    `json:"years"`
		Price          any    `json:"price"`
		Account        string `json:"account_id"`
		RegistrationID string `json:"registration_id,omitempty"`
		Time           string `json:"time"`
		Month          string `json:"month"`
	}
	out := []charge{}
	for _, c := range a.sandbox.cf.Charges() {
		out = append(out, charge{Domain: c.Domain, Years: c.Years, Price: c.Price, Account: c.Account, RegistrationID: c.RegistrationID,
			Time: c.Time.UTC().Format(time.RFC3339), Month: c.Time.UTC().Format("2006-01")})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"charges": out})
}

// devCloudflareScripts serves GET /dev/cloudflare/scripts?account=ID: the
// Worker scripts of one account of the sandbox's fake by name with their
// SHA-256, so a script can see what is live. Each account has its own
// Workers: without ?account, the answer lists every account's, by account.
func (a *App) devCloudflareScripts(w http.ResponseWriter, r *http.Request) {
	scripts := func(acct string) map[string]string {
		out := map[string]string{}
		for name, s := range a.sandbox.cf.ScriptsIn(acct) {
			out[name] = s.SHA256
		}
		return out
	}
	if acct := r.URL.Query().Get("account"); acct != "" {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"account": acct, "scripts": scripts(acct)})
		return
	}
	all := map[string]map[string]string{}
	for _, acct := range a.sandbox.cf.Accounts() {
		if s := scripts(acct.ID); len(s) > 0 {
			all[acct.ID] = s
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"accounts": all})
}

// devLinkCloudflare serves POST /dev/cloudflare/link (email=…): the
// sandbox's shortcut for what billing_setup and account_connect do with a
// human in the loop. It links the dev user's Cloudflare account in the
// fake — the existing one for that e-mail as if its owner allowed
// tollgate on the consent page, else a new one as if they accepted the
// terms — and records its zones. Like the dev IdP, it exists only in the
// sandbox and only for loopback callers.
func (a *App) devLinkCloudflare(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	if _, err := a.id.dev.UserToken(email, nil, time.Minute); err != nil || email == "" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "email must be an e-mail address the dev identity provider accepts")
		return
	}
	acct, created, zones, err := a.linkSandboxAccount(r.Context(), email)
	if err != nil {
		httpx.Fail(w, http.StatusBadGateway, string(fault.CodeOf(err)), fault.PublicOf(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"principal": "user:" + email, "account_id": acct, "created": created, "zones": zones})
}

// linkSandboxAccount links user:email to its own account in the sandbox's
// fake Cloudflare: the existing one for email, by a consent grant, else a
// new one; and records the account's zones.
func (a *App) linkSandboxAccount(ctx context.Context, email string) (account string, created bool, zones int, err error) {
	if a.sandbox == nil || a.sandbox.cf == nil {
		return "", false, 0, fault.New(fault.InvalidArgument, "only a sandbox running its own fakes links accounts without a human; ask the replica given to --sandbox-providers-from")
	}
	fake := a.sandbox.cf
	var link links.CloudflareLink
	_, exists := fake.AccountForEmail(email)
	if exists {
		ans, err := fake.GrantConsent(email, sandboxOAuthClientID, strings.Join(cloudflareScopes, " "))
		if err != nil {
			return "", false, 0, fault.Wrap(err, fault.Internal, "the sandbox's Cloudflare did not grant access")
		}
		acct, _ := ans["account_id"].(string)
		access, _ := ans["access_token"].(string)
		refresh, _ := ans["refresh_token"].(string)
		secs, _ := ans["expires_in"].(int)
		link = links.CloudflareLink{AccountID: acct, Token: &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "bearer",
			Expiry: time.Now().Add(time.Duration(secs) * time.Second)}}
	} else {
		cfg, err := a.accountConfig()
		if err == nil {
			link, err = cfg.Directory.CreateAccount(ctx, email, email+" (tollgate)", fake.TermsVersion())
		}
		if err != nil {
			return "", false, 0, err
		}
	}
	in, err := a.money.cloudflare.As(cloudflare.Credential{AccountID: link.AccountID, Token: oauth2.StaticTokenSource(link.Token)})
	if err != nil {
		return "", false, 0, err
	}
	refs, err := in.AccountZones(ctx)
	if err != nil {
		return "", false, 0, err
	}
	if err := a.links.LinkCloudflare(ctx, "user:"+email, link, refs); err != nil {
		return "", false, 0, err
	}
	return link.AccountID, !exists, len(refs), nil
}

// devAdvance serves POST /dev/stripe/advance (days=N, 1-400): the
// sandbox's Stripe test clock moves N days on; subscriptions whose period
// ends renew, their invoices are paid and the signed invoice.paid events
// reach /webhooks/stripe before the answer.
func (a *App) devAdvance(w http.ResponseWriter, r *http.Request) {
	days, err := strconv.Atoi(r.FormValue("days"))
	if err != nil || days < 1 || days > 400 {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "days must be a whole number from 1 to 400; the clock did not move")
		return
	}
	before := len(a.sandbox.stripe.Charges())
	now, failed, err := a.sandbox.stripe.AdvanceClock(a.sandbox.clock, time.Duration(days)*24*time.Hour)
	if err != nil {
		httpx.Fail(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if failed == nil {
		failed = []string{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"clock": a.sandbox.clock, "frozen_time": now.Format(time.RFC3339),
		"renewals": len(a.sandbox.stripe.Charges()) - before, "failed_deliveries": failed})
}
