package app

// URL-mode flows (SPEC §8, §11): the human, signed in on the approvals
// page as the principal, continues from a billing or authentication
// approval to the provider's own page, and comes back to a callback here.
//
//	GET /approvals/{id}/billing      → Stripe Checkout (setup mode)
//	GET /oauth/callback/stripe       ← ?approval=…&session_id=cs_…
//	GET /approvals/{id}/cloudflare   → Cloudflare OAuth consent (code + PKCE)
//	GET /oauth/callback/cloudflare   ← ?code=…&state=…
//
// The approvals cookie is Path=/approvals and SameSite=Strict, so it does
// not reach the callbacks (a cross-site redirect from the provider). The
// start sets a second cookie, tg_flow (Path=/oauth/callback, SameSite=Lax,
// 10 minutes), MAC'd under a key derived from the page's cookie key and
// naming the principal and the approval: a callback only completes in the
// browser of the principal who started it (no login CSRF: an attacker's
// callback link fails in the victim's browser, and the victim's link fails
// in the attacker's). What the flow needs server-side — the PKCE verifier,
// the state, the Checkout session id — is kept in Redis under the approval
// id for 10 minutes and never leaves the server.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

const (
	flowCookie = "tg_flow"
	flowPath   = "/oauth/callback"
	flowTTL    = 10 * time.Minute

	// Production OAuth client of Cloudflare (registration is not
	// self-serve: the operator receives an id and secret).
	CloudflareOAuthClientIDEnv     = "TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_ID"
	CloudflareOAuthClientSecretEnv = "TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_SECRET"
	cloudflareAuthURL              = "https://dash.cloudflare.com/oauth2/auth"
	cloudflareTokenURL             = "https://dash.cloudflare.com/oauth2/token"

	// The sandbox's OAuth client at the fake Cloudflare; not a credential
	// anywhere else.
	sandboxOAuthClientID     = "tollgate-sandbox"
	sandboxOAuthClientSecret = "tollgate-sandbox-oauth-secret"
)

// cloudflareScopes are what tollgate asks the human to allow.
var cloudflareScopes = []string{"account:read", "user:read", "zone:read", "dns_records:edit", "offline_access"}

// flows serves the URL-mode flows; it shares the approvals page's keys.
type flows struct {
	a     *App
	p     *approvalsPage
	oauth *oauth2.Config // nil: Cloudflare linking is not configured
	http  *http.Client
}

func (a *App) newFlows(p *approvalsPage) *flows {
	return &flows{a: a, p: p, http: &http.Client{Timeout: a.Cfg.ProviderTimeout}, oauth: a.cloudflareOAuth()}
}

// cloudflareOAuth is tollgate's OAuth client at Cloudflare: the server's
// only Cloudflare credential, used to link accounts and renew their
// tokens. Nil when not configured.
func (a *App) cloudflareOAuth() *oauth2.Config {
	redirect := a.Cfg.PublicURL + flowPath + "/cloudflare"
	switch {
	case a.sandbox != nil:
		return &oauth2.Config{ClientID: sandboxOAuthClientID, ClientSecret: sandboxOAuthClientSecret, RedirectURL: redirect, Scopes: cloudflareScopes,
			Endpoint: a.sandbox.oauthEndpoint()}
	case os.Getenv(CloudflareOAuthClientIDEnv) != "":
		return &oauth2.Config{ClientID: os.Getenv(CloudflareOAuthClientIDEnv), ClientSecret: os.Getenv(CloudflareOAuthClientSecretEnv), RedirectURL: redirect, Scopes: cloudflareScopes,
			Endpoint: oauth2.Endpoint{AuthURL: cloudflareAuthURL, TokenURL: cloudflareTokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	}
	return nil
}

// accountConfig wires account_connect. The sandbox's fake answers the
// account-connection protocol (tools/cloudflare.Directory); against real
// Cloudflare accounts are linked by consent, never created.
func (a *App) accountConfig() (tools.AccountConfig, error) {
	cfg := tools.AccountConfig{Links: a.links, Consents: a.gates.consents, Tenancy: a.tenant}
	if a.sandbox != nil {
		d, err := cloudflare.NewDirectory(cloudflare.DirectoryConfig{BaseURL: a.money.cfBase, ClientID: sandboxOAuthClientID,
			ClientSecret: sandboxOAuthClientSecret, Scopes: cloudflareScopes, HTTPClient: &http.Client{}})
		if err != nil {
			return tools.AccountConfig{}, err
		}
		cfg.Directory = d
	}
	return cfg, nil
}

// flowRecord is what a flow keeps server-side between start and callback,
// in package flowstate's store.
type flowRecord = flowstate.Record

func (f *flows) save(ctx context.Context, approval string, rec flowRecord) error {
	return f.a.flowState.Save(ctx, approval, rec)
}

// load reads a flow's record; del removes it (a flow completes once).
func (f *flows) load(ctx context.Context, approval string, del bool) (flowRecord, error) {
	if del {
		return f.a.flowState.Take(ctx, approval)
	}
	return f.a.flowState.Get(ctx, approval)
}

func (f *flows) flowMAC(k *pageKeys, payload string) []byte {
	m := hmac.New(sha256.New, derive(k.cookie, "tollgate flow cookie key v1"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (f *flows) setFlowCookie(w http.ResponseWriter, k *pageKeys, principal, approval string) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(principal)) + "|" + approval + "|" +
		strconv.FormatInt(f.p.now().Add(flowTTL).Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: payload + "|" + base64.RawURLEncoding.EncodeToString(f.flowMAC(k, payload)),
		Path: flowPath, MaxAge: int(flowTTL.Seconds()), HttpOnly: true, Secure: f.p.secure(),
		// Lax: the provider's redirect back is a cross-site top-level GET.
		SameSite: http.SameSiteLaxMode})
}

func (f *flows) clearFlowCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: flowPath, MaxAge: -1, HttpOnly: true, Secure: f.p.secure(), SameSite: http.SameSiteLaxMode})
}

// flowOf returns the principal and approval of the browser's flow cookie.
func (f *flows) flowOf(r *http.Request) (k *pageKeys, principal, approval string, err error) {
	if k, err = f.p.loadKeys(r.Context()); err != nil {
		return nil, "", "", err
	}
	c, cerr := r.Cookie(flowCookie)
	if cerr != nil || len(c.Value) > maxCookie {
		return k, "", "", errNoSession
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 4 {
		return k, "", "", errNoSession
	}
	sum, derr := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	if derr != nil || !hmac.Equal(sum, f.flowMAC(k, strings.Join(parts[:3], "|"))) {
		return k, "", "", errNoSession
	}
	p, perr := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	exp, eerr := strconv.ParseInt(parts[2], 10, 64)
	if perr != nil || eerr != nil || len(p) == 0 || parts[1] == "" || !f.p.now().Before(time.Unix(exp, 0)) {
		return k, "", "", errNoSession
	}
	return k, string(p), parts[1], nil
}

// startable returns the signed-in principal's pending approval of kind.
func (f *flows) startable(w http.ResponseWriter, r *http.Request, kind human.Kind) (*pageKeys, pageSession, human.Approval, bool) {
	k, s, ok := f.p.signedIn(w, r)
	if !ok {
		return nil, pageSession{}, human.Approval{}, false
	}
	ap, ok := f.p.own(w, r, s)
	if !ok {
		return nil, pageSession{}, human.Approval{}, false
	}
	if ap.Kind != kind || ap.Status != human.StatusPending {
		f.p.message(w, http.StatusConflict, "Not available", "This approval is not a pending "+kindLabel(kind)+" request. Nothing was done.")
		return nil, pageSession{}, human.Approval{}, false
	}
	if !strings.HasPrefix(s.principal, "user:") {
		f.p.message(w, http.StatusBadRequest, "Not available", "This flow needs a person signed in with an e-mail address. Nothing was done.")
		return nil, pageSession{}, human.Approval{}, false
	}
	return k, s, ap, true
}

// callback checks that the browser that comes back is the one of the
// principal who started the flow for approval, and returns the flow's
// record (removed: a callback completes once).
func (f *flows) callback(w http.ResponseWriter, r *http.Request, kind human.Kind, approval string) (string, human.Approval, flowRecord, bool) {
	_, principal, cookieApproval, err := f.flowOf(r)
	if err != nil && !errors.Is(err, errNoSession) {
		f.p.unavailable(w, err)
		return "", human.Approval{}, flowRecord{}, false
	}
	// SPEC §8: the human completing a URL flow is the principal of the session.
	if err != nil || (approval != "" && subtle.ConstantTimeCompare([]byte(approval), []byte(cookieApproval)) != 1) {
		f.p.forbidden(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	ap, err := f.a.gates.approvals.Get(r.Context(), cookieApproval)
	if err != nil {
		f.p.storeError(w, err)
		return "", human.Approval{}, flowRecord{}, false
	}
	if ap.Binding.Principal != principal || ap.Kind != kind {
		f.p.notFound(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	rec, err := f.load(r.Context(), ap.ID, true)
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		f.p.message(w, http.StatusGone, "Expired", "This sign-in flow is unknown or already finished. Open the approval again and continue from there. Nothing was done.")
		return "", human.Approval{}, flowRecord{}, false
	case err != nil:
		f.p.unavailable(w, err)
		return "", human.Approval{}, flowRecord{}, false
	case rec.Principal != principal || rec.Kind != string(kind):
		f.p.forbidden(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	return principal, ap, rec, true
}

// approve records the provider's answer as the human's decision.
func (f *flows) approve(w http.ResponseWriter, r *http.Request, ap human.Approval, principal, by, done string) {
	dec, err := f.a.gates.approvals.Decide(r.Context(), ap.ID, principal, true, by)
	if err != nil {
		switch fault.CodeOf(err) {
		case human.ApprovalExpired:
			f.p.message(w, http.StatusGone, "Expired", "This approval expired before it was completed; what you set up is kept, and the agent has to ask again.")
		case human.ApprovalDecided:
			f.p.message(w, http.StatusOK, "Already decided", done)
		default:
			f.p.storeError(w, err)
		}
		return
	}
	f.a.auditDecision(r.Context(), dec, by)
	f.clearFlowCookie(w)
	f.p.message(w, http.StatusOK, "Done", done)
}

func (f *flows) providerError(w http.ResponseWriter, provider string, err error) {
	f.a.Log.Warn("flow: provider refused", "provider", provider, "err", err)
	f.p.message(w, http.StatusBadGateway, provider+" refused", fault.PublicOf(err))
}

// startBilling serves GET /approvals/{id}/billing.
func (f *flows) startBilling(w http.ResponseWriter, r *http.Request) {
	k, s, ap, ok := f.startable(w, r, human.Billing)
	if !ok {
		return
	}
	ctx := r.Context()
	email := strings.TrimPrefix(s.principal, "user:")
	// SPEC §9.2: Stripe idempotency keys are deterministic from ours.
	cust, err := f.a.stripe.client.FindOrCreateCustomer(ctx, email, s.principal, f.a.money.idem.UpstreamKey("billing_customer:"+s.principal, "stripe"))
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if err := f.a.links.Set(ctx, s.principal, map[string]string{tools.LinkStripeCustomer: cust.ID}); err != nil {
		f.p.unavailable(w, err)
		return
	}
	base := f.a.Cfg.PublicURL
	success := base + flowPath + "/stripe?approval=" + url.QueryEscape(ap.ID) + "&session_id={CHECKOUT_SESSION_ID}"
	cancel := base + approvalsPath + "/" + url.PathEscape(ap.ID)
	co, err := f.a.stripe.client.CreateSetupCheckout(ctx, cust.ID, success, cancel, f.a.money.idem.UpstreamKey("billing_checkout:"+s.principal+"|"+ap.ID, "stripe"))
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if err := f.save(ctx, ap.ID, flowRecord{Principal: s.principal, Kind: string(human.Billing), Session: co.ID, Customer: cust.ID, Email: cust.Email}); err != nil {
		f.p.unavailable(w, err)
		return
	}
	f.setFlowCookie(w, k, s.principal, ap.ID)
	http.Redirect(w, r, co.URL, http.StatusSeeOther)
}

// stripeCallback serves GET /oauth/callback/stripe?approval=…&session_id=….
func (f *flows) stripeCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	approval, session := q.Get("approval"), q.Get("session_id")
	if approval == "" || session == "" {
		f.p.message(w, http.StatusBadRequest, "Bad request", "approval and session_id are required. Nothing was done.")
		return
	}
	principal, ap, rec, ok := f.callback(w, r, human.Billing, approval)
	if !ok {
		return
	}
	// The session must be the one started for this approval (and so for
	// this principal's customer), not any completed session.
	if subtle.ConstantTimeCompare([]byte(session), []byte(rec.Session)) != 1 {
		f.p.forbidden(w)
		return
	}
	ctx := r.Context()
	pm, complete, err := f.a.stripe.client.CheckoutResult(ctx, session)
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if !complete {
		// Keep the flow: Stripe may still be processing.
		_ = f.save(ctx, ap.ID, rec)
		f.p.message(w, http.StatusAccepted, "Not finished", "Stripe has not confirmed the payment method yet. Reload this page in a moment. Nothing was charged.")
		return
	}
	if err := f.a.links.Set(ctx, principal, map[string]string{tools.LinkStripeCustomer: rec.Customer, tools.LinkStripePaymentMethod: pm, tools.LinkStripeEmail: rec.Email}); err != nil {
		f.p.unavailable(w, err)
		return
	}
	if err := f.a.gates.consents.Remember(ctx, principal, tools.BillingConsent.Provider, human.Billing, tools.BillingConsent.Version); err != nil {
		f.p.unavailable(w, err)
		return
	}
	f.approve(w, r, ap, principal, "stripe-checkout", "Payment method added. The agent can continue.")
}

// startCloudflare serves GET /approvals/{id}/cloudflare.
func (f *flows) startCloudflare(w http.ResponseWriter, r *http.Request) {
	k, s, ap, ok := f.startable(w, r, human.Authentication)
	if !ok {
		return
	}
	if f.oauth == nil {
		f.p.message(w, http.StatusServiceUnavailable, "Not configured", "Linking Cloudflare accounts is not configured on this server ("+CloudflareOAuthClientIDEnv+"). Nothing was done.")
		return
	}
	// RFC 7636: S256 PKCE; RFC 6749 §10.12: state against CSRF. Both stay
	// on the server.
	verifier, state := oauth2.GenerateVerifier(), randomID()
	if err := f.save(r.Context(), ap.ID, flowRecord{Principal: s.principal, Kind: string(human.Authentication), State: state, Verifier: verifier}); err != nil {
		f.p.unavailable(w, err)
		return
	}
	f.setFlowCookie(w, k, s.principal, ap.ID)
	// The account is the one of the e-mail Stripe verified (SPEC §11).
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if email, err := f.a.links.Get(r.Context(), s.principal, tools.LinkStripeEmail); err == nil && email != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", email))
	}
	http.Redirect(w, r, f.oauth.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// cloudflareCallback serves GET /oauth/callback/cloudflare?code=…&state=….
func (f *flows) cloudflareCallback(w http.ResponseWriter, r *http.Request) {
	if f.oauth == nil {
		f.p.notFound(w)
		return
	}
	q := r.URL.Query()
	principal, ap, rec, ok := f.callback(w, r, human.Authentication, "")
	if !ok {
		return
	}
	if rec.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(rec.State)) != 1 {
		f.p.forbidden(w)
		return
	}
	if e := q.Get("error"); e != "" || q.Get("code") == "" {
		f.p.message(w, http.StatusOK, "Not linked", "Cloudflare did not grant access, so nothing was linked. Open the approval again to retry, or deny it.")
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, f.http)
	tok, err := f.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(rec.Verifier))
	if err != nil {
		f.a.Log.Warn("flow: cloudflare code exchange failed", "err", err)
		f.p.message(w, http.StatusBadGateway, "Cloudflare refused", "Cloudflare did not accept the sign-in. Nothing was linked; open the approval again to retry.")
		return
	}
	acct, zones, err := f.consentedAccount(ctx, tok, principal)
	if err != nil {
		f.providerError(w, "Cloudflare", err)
		return
	}
	// The credential is sealed server-side (internal/links) and never
	// returned to an agent; the account's zones are what its tools may
	// touch.
	if err := f.a.links.LinkCloudflare(ctx, principal, links.CloudflareLink{AccountID: acct, Token: tok}, zones); err != nil {
		f.p.unavailable(w, err)
		return
	}
	f.approve(w, r, ap, principal, "cloudflare-oauth", "Cloudflare account linked. The agent can continue.")
}

// consentedAccount is the account an OAuth access token acts on (the one
// the human consented to) and the zones it holds.
func (f *flows) consentedAccount(ctx context.Context, tok *oauth2.Token, principal string) (string, []links.ZoneRef, error) {
	c, err := cloudflare.NewClient(cloudflare.Config{BaseURL: f.a.money.cfBase, HTTPClient: f.http, Catalog: f.a.Catalog, Timeout: f.a.Cfg.ProviderTimeout})
	if err != nil {
		return "", nil, err
	}
	// Any well-formed id: Accounts names none in its path.
	probe, err := c.As(cloudflare.Credential{AccountID: strings.Repeat("0", 32), Token: oauth2.StaticTokenSource(tok)})
	if err != nil {
		return "", nil, err
	}
	// SPEC §11: the account is the one of the e-mail Stripe verified; the
	// login hint only suggests it, so the person who consented is checked.
	want, err := f.a.links.Get(ctx, principal, tools.LinkStripeEmail)
	if err != nil {
		return "", nil, err
	}
	got, err := probe.UserEmail(ctx)
	if err != nil {
		return "", nil, err
	}
	if want == "" || !strings.EqualFold(got, want) {
		return "", nil, fault.Newf(fault.ResourceForbidden,
			"you allowed access as %s at Cloudflare, but the e-mail Stripe verified for you is %s; nothing was linked. Open the approval again and sign in at Cloudflare as %s.", got, want, want)
	}
	accts, err := probe.Accounts(ctx)
	if err != nil {
		return "", nil, err
	}
	if len(accts) != 1 {
		return "", nil, fault.New(fault.Internal, "Cloudflare's consent did not name exactly one account; nothing was linked. Open the approval again to retry.")
	}
	in, err := c.As(cloudflare.Credential{AccountID: accts[0].ID, Token: oauth2.StaticTokenSource(tok)})
	if err != nil {
		return "", nil, err
	}
	refs, err := in.AccountZones(ctx)
	if err != nil {
		return "", nil, err
	}
	return accts[0].ID, refs, nil
}
