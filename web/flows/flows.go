package flows

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
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
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
	"github.com/tollgate-dev/tollgate/tools/stripe"
	"github.com/tollgate-dev/tollgate/web/approvals"
)

const (
	flowCookie = "tg_flow"
	// CallbackPath is where providers send the human back: the Cloudflare
	// OAuth client's redirect URI is CallbackPath + "/cloudflare".
	CallbackPath = "/oauth/callback"
	flowPath     = CallbackPath
	// TTL is how long a flow may take, from its start to its callback.
	TTL     = 10 * time.Minute
	flowTTL = TTL
)

// Approvals reads and decides the approval a flow completes (human.Approvals).
type Approvals interface {
	Get(ctx context.Context, id string) (human.Approval, error)
	Decide(ctx context.Context, id, principal string, approve bool, by string) (human.Approval, error)
}

// States keeps what a flow needs between its start and its callback
// (flowstate.Store).
type States interface {
	Save(ctx context.Context, approval string, rec flowstate.Record) error
	Get(ctx context.Context, approval string) (flowstate.Record, error)
	Take(ctx context.Context, approval string) (flowstate.Record, error)
}

// Links records what a flow linked to the principal (links.Store).
type Links interface {
	Set(ctx context.Context, principal string, fields map[string]string) error
	Get(ctx context.Context, principal, field string) (string, error)
	LinkCloudflare(ctx context.Context, principal string, link links.CloudflareLink, zones []links.ZoneRef) error
}

// Consents remembers that the human accepted a provider's terms
// (human.Consents).
type Consents interface {
	Remember(ctx context.Context, principal, provider string, kind human.Kind, version string) error
}

// Stripe is the Stripe platform account's side of the billing flow
// (stripe.Client).
type Stripe interface {
	FindOrCreateCustomer(ctx context.Context, email, principal, idemKey string) (stripe.Customer, error)
	CreateSetupCheckout(ctx context.Context, customerID, successURL, cancelURL, idemKey string) (stripe.Checkout, error)
	CheckoutResult(ctx context.Context, sessionID string) (paymentMethodID string, complete bool, err error)
}

// UpstreamKeys makes Stripe idempotency keys from ours (idempotency.Store).
type UpstreamKeys interface {
	UpstreamKey(ourKey, provider string) string
}

// Config is what the flows need; every field but OAuth is required.
type Config struct {
	// PublicURL is tollgate's public URL, the root of the return URLs.
	PublicURL string
	// Page is the approvals page the flows start from: its signed-in
	// human, its answers, and the key the flow cookie's MAC derives from.
	Page      *approvals.Page
	Approvals Approvals
	States    States
	Links     Links
	Consents  Consents
	Stripe    Stripe
	Upstream  UpstreamKeys
	// OAuth is tollgate's OAuth client at Cloudflare; nil: linking
	// Cloudflare accounts is not configured.
	OAuth *oauth2.Config
	// Cloudflare is the client the consented account is read with (no
	// credential of its own: each call acts with the human's new token).
	Cloudflare *cloudflare.Client
	// HTTP is the client of the OAuth code exchange.
	HTTP *http.Client
	Log  *slog.Logger
}

// Flows serves the URL-mode flows; it shares the approvals page's keys.
type Flows struct {
	cfg   Config
	p     *approvals.Page
	oauth *oauth2.Config // nil: Cloudflare linking is not configured
	http  *http.Client
}

// New builds the flows.
func New(cfg Config) (*Flows, error) {
	if cfg.Page == nil || cfg.Approvals == nil || cfg.States == nil || cfg.Links == nil || cfg.Consents == nil ||
		cfg.Stripe == nil || cfg.Upstream == nil || cfg.Cloudflare == nil || cfg.HTTP == nil {
		return nil, errors.New("flows: Config needs Page, Approvals, States, Links, Consents, Stripe, Upstream, Cloudflare and HTTP")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Flows{cfg: cfg, p: cfg.Page, oauth: cfg.OAuth, http: cfg.HTTP}, nil
}

// Mount serves the flows' routes on mux, each behind the page's headers
// and cross-origin protection.
func (f *Flows) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+approvals.Path+"/{id}/billing", f.p.Handle(f.startBilling))
	mux.Handle("GET "+approvals.Path+"/{id}/cloudflare", f.p.Handle(f.startCloudflare))
	mux.Handle("GET "+CallbackPath+"/stripe", f.p.Handle(f.stripeCallback))
	mux.Handle("GET "+CallbackPath+"/cloudflare", f.p.Handle(f.cloudflareCallback))
}

// flowRecord is what a flow keeps server-side between start and callback,
// in package flowstate's store.
type flowRecord = flowstate.Record

func (f *Flows) save(ctx context.Context, approval string, rec flowRecord) error {
	return f.cfg.States.Save(ctx, approval, rec)
}

// load reads a flow's record; del removes it (a flow completes once).
func (f *Flows) load(ctx context.Context, approval string, del bool) (flowRecord, error) {
	if del {
		return f.cfg.States.Take(ctx, approval)
	}
	return f.cfg.States.Get(ctx, approval)
}

// flowKeyLabel names the flow cookie's MAC key, derived from the page's
// cookie key: a page session's MAC is never a flow cookie's.
const flowKeyLabel = "tollgate flow cookie key v1"

// maxCookie bounds a cookie before it is parsed.
const maxCookie = 2048

// randomState is 128 bits from crypto/rand, base64url.
func randomState() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errNoFlow is a missing, forged or expired flow cookie.
var errNoFlow = errors.New("flows: no flow cookie of this browser")

func flowMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (f *Flows) setFlowCookie(w http.ResponseWriter, key []byte, principal, approval string) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(principal)) + "|" + approval + "|" +
		strconv.FormatInt(f.p.Now().Add(flowTTL).Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: payload + "|" + base64.RawURLEncoding.EncodeToString(flowMAC(key, payload)),
		Path: flowPath, MaxAge: int(flowTTL.Seconds()), HttpOnly: true, Secure: f.p.Secure(),
		// Lax: the provider's redirect back is a cross-site top-level GET.
		SameSite: http.SameSiteLaxMode})
}

func (f *Flows) clearFlowCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: flowPath, MaxAge: -1, HttpOnly: true, Secure: f.p.Secure(), SameSite: http.SameSiteLaxMode})
}

// flowOf returns the principal and approval of the browser's flow cookie:
// errNoFlow when there is none this server sealed that is still valid, any
// other error when the key could not be loaded (fail closed).
func (f *Flows) flowOf(r *http.Request) (principal, approval string, err error) {
	key, err := f.p.Key(r.Context(), flowKeyLabel)
	if err != nil {
		return "", "", err
	}
	return openFlowCookie(r, key, f.p.Now())
}

func openFlowCookie(r *http.Request, key []byte, now time.Time) (principal, approval string, err error) {
	c, cerr := r.Cookie(flowCookie)
	if cerr != nil || len(c.Value) > maxCookie {
		return "", "", errNoFlow
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 4 {
		return "", "", errNoFlow
	}
	sum, derr := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	// Authenticate the whole value in constant time before reading any of it.
	if derr != nil || !hmac.Equal(sum, flowMAC(key, strings.Join(parts[:3], "|"))) {
		return "", "", errNoFlow
	}
	p, perr := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	exp, eerr := strconv.ParseInt(parts[2], 10, 64)
	if perr != nil || eerr != nil || len(p) == 0 || parts[1] == "" || !now.Before(time.Unix(exp, 0)) {
		return "", "", errNoFlow
	}
	return string(p), parts[1], nil
}

// startable returns the signed-in principal's pending approval of kind,
// and the flow cookie's key.
func (f *Flows) startable(w http.ResponseWriter, r *http.Request, kind human.Kind) ([]byte, approvals.Session, human.Approval, bool) {
	s, ok := f.p.SignedIn(w, r)
	if !ok {
		return nil, approvals.Session{}, human.Approval{}, false
	}
	ap, ok := f.p.Own(w, r, s)
	if !ok {
		return nil, approvals.Session{}, human.Approval{}, false
	}
	if ap.Kind != kind || ap.Status != human.StatusPending {
		f.p.Message(w, http.StatusConflict, "Not available", "This approval is not a pending "+approvals.KindLabel(kind)+" request. Nothing was done.")
		return nil, approvals.Session{}, human.Approval{}, false
	}
	if !strings.HasPrefix(s.Principal, "user:") {
		f.p.Message(w, http.StatusBadRequest, "Not available", "This flow needs a person signed in with an e-mail address. Nothing was done.")
		return nil, approvals.Session{}, human.Approval{}, false
	}
	key, err := f.p.Key(r.Context(), flowKeyLabel)
	if err != nil {
		f.p.Unavailable(w, err)
		return nil, approvals.Session{}, human.Approval{}, false
	}
	return key, s, ap, true
}

// callback checks that the browser that comes back is the one of the
// principal who started the flow for approval, and returns the flow's
// record (removed: a callback completes once).
func (f *Flows) callback(w http.ResponseWriter, r *http.Request, kind human.Kind, approval string) (string, human.Approval, flowRecord, bool) {
	principal, cookieApproval, err := f.flowOf(r)
	if err != nil && !errors.Is(err, errNoFlow) {
		f.p.Unavailable(w, err)
		return "", human.Approval{}, flowRecord{}, false
	}
	// SPEC §8: the human completing a URL flow is the principal of the session.
	if err != nil || (approval != "" && subtle.ConstantTimeCompare([]byte(approval), []byte(cookieApproval)) != 1) {
		f.p.Forbidden(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	ap, err := f.cfg.Approvals.Get(r.Context(), cookieApproval)
	if err != nil {
		f.p.StoreError(w, err)
		return "", human.Approval{}, flowRecord{}, false
	}
	if ap.Binding.Principal != principal || ap.Kind != kind {
		f.p.NotFound(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	rec, err := f.load(r.Context(), ap.ID, true)
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		f.p.Message(w, http.StatusGone, "Expired", "This sign-in flow is unknown or already finished. Open the approval again and continue from there. Nothing was done.")
		return "", human.Approval{}, flowRecord{}, false
	case err != nil:
		f.p.Unavailable(w, err)
		return "", human.Approval{}, flowRecord{}, false
	case rec.Principal != principal || rec.Kind != string(kind):
		f.p.Forbidden(w)
		return "", human.Approval{}, flowRecord{}, false
	}
	return principal, ap, rec, true
}

// approve records the provider's answer as the human's decision.
func (f *Flows) approve(w http.ResponseWriter, r *http.Request, ap human.Approval, principal, by, done string) {
	dec, err := f.cfg.Approvals.Decide(r.Context(), ap.ID, principal, true, by)
	if err != nil {
		switch fault.CodeOf(err) {
		case human.ApprovalExpired:
			f.p.Message(w, http.StatusGone, "Expired", "This approval expired before it was completed; what you set up is kept, and the agent has to ask again.")
		case human.ApprovalDecided:
			f.p.Message(w, http.StatusOK, "Already decided", done)
		default:
			f.p.StoreError(w, err)
		}
		return
	}
	f.p.Decided(r.Context(), dec, by)
	f.clearFlowCookie(w)
	f.p.Message(w, http.StatusOK, "Done", done)
}

func (f *Flows) providerError(w http.ResponseWriter, provider string, err error) {
	f.cfg.Log.Warn("flow: provider refused", "provider", provider, "err", err)
	f.p.Message(w, http.StatusBadGateway, provider+" refused", fault.PublicOf(err))
}

// startBilling serves GET /approvals/{id}/billing.
func (f *Flows) startBilling(w http.ResponseWriter, r *http.Request) {
	k, s, ap, ok := f.startable(w, r, human.Billing)
	if !ok {
		return
	}
	ctx := r.Context()
	email := strings.TrimPrefix(s.Principal, "user:")
	// SPEC §9.2: Stripe idempotency keys are deterministic from ours.
	cust, err := f.cfg.Stripe.FindOrCreateCustomer(ctx, email, s.Principal, f.cfg.Upstream.UpstreamKey("billing_customer:"+s.Principal, "stripe"))
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if err := f.cfg.Links.Set(ctx, s.Principal, map[string]string{tools.LinkStripeCustomer: cust.ID}); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	base := f.cfg.PublicURL
	success := base + flowPath + "/stripe?approval=" + url.QueryEscape(ap.ID) + "&session_id={CHECKOUT_SESSION_ID}"
	cancel := base + approvals.Path + "/" + url.PathEscape(ap.ID)
	co, err := f.cfg.Stripe.CreateSetupCheckout(ctx, cust.ID, success, cancel, f.cfg.Upstream.UpstreamKey("billing_checkout:"+s.Principal+"|"+ap.ID, "stripe"))
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if err := f.save(ctx, ap.ID, flowRecord{Principal: s.Principal, Kind: string(human.Billing), Session: co.ID, Customer: cust.ID, Email: cust.Email}); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	f.setFlowCookie(w, k, s.Principal, ap.ID)
	http.Redirect(w, r, co.URL, http.StatusSeeOther)
}

// stripeCallback serves GET /oauth/callback/stripe?approval=…&session_id=….
func (f *Flows) stripeCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	approval, session := q.Get("approval"), q.Get("session_id")
	if approval == "" || session == "" {
		f.p.Message(w, http.StatusBadRequest, "Bad request", "approval and session_id are required. Nothing was done.")
		return
	}
	principal, ap, rec, ok := f.callback(w, r, human.Billing, approval)
	if !ok {
		return
	}
	// The session must be the one started for this approval (and so for
	// this principal's customer), not any completed session.
	if subtle.ConstantTimeCompare([]byte(session), []byte(rec.Session)) != 1 {
		f.p.Forbidden(w)
		return
	}
	ctx := r.Context()
	pm, complete, err := f.cfg.Stripe.CheckoutResult(ctx, session)
	if err != nil {
		f.providerError(w, "Stripe", err)
		return
	}
	if !complete {
		// Keep the flow: Stripe may still be processing.
		_ = f.save(ctx, ap.ID, rec)
		f.p.Message(w, http.StatusAccepted, "Not finished", "Stripe has not confirmed the payment method yet. Reload this page in a moment. Nothing was charged.")
		return
	}
	if err := f.cfg.Links.Set(ctx, principal, map[string]string{tools.LinkStripeCustomer: rec.Customer, tools.LinkStripePaymentMethod: pm, tools.LinkStripeEmail: rec.Email}); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	if err := f.cfg.Consents.Remember(ctx, principal, tools.BillingConsent.Provider, human.Billing, tools.BillingConsent.Version); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	f.approve(w, r, ap, principal, "stripe-checkout", "Payment method added. The agent can continue.")
}

// startCloudflare serves GET /approvals/{id}/cloudflare.
func (f *Flows) startCloudflare(w http.ResponseWriter, r *http.Request) {
	k, s, ap, ok := f.startable(w, r, human.Authentication)
	if !ok {
		return
	}
	if f.oauth == nil {
		f.p.Message(w, http.StatusServiceUnavailable, "Not configured", "Linking Cloudflare accounts is not configured on this server (TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_ID). Nothing was done.")
		return
	}
	// RFC 7636: S256 PKCE; RFC 6749 §10.12: state against CSRF. Both stay
	// on the server.
	verifier, state := oauth2.GenerateVerifier(), randomState()
	if err := f.save(r.Context(), ap.ID, flowRecord{Principal: s.Principal, Kind: string(human.Authentication), State: state, Verifier: verifier}); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	f.setFlowCookie(w, k, s.Principal, ap.ID)
	// The account is the one of the e-mail Stripe verified (SPEC §11).
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if email, err := f.cfg.Links.Get(r.Context(), s.Principal, tools.LinkStripeEmail); err == nil && email != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", email))
	}
	http.Redirect(w, r, f.oauth.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// cloudflareCallback serves GET /oauth/callback/cloudflare?code=…&state=….
func (f *Flows) cloudflareCallback(w http.ResponseWriter, r *http.Request) {
	if f.oauth == nil {
		f.p.NotFound(w)
		return
	}
	q := r.URL.Query()
	principal, ap, rec, ok := f.callback(w, r, human.Authentication, "")
	if !ok {
		return
	}
	if rec.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(rec.State)) != 1 {
		f.p.Forbidden(w)
		return
	}
	if e := q.Get("error"); e != "" || q.Get("code") == "" {
		f.p.Message(w, http.StatusOK, "Not linked", "Cloudflare did not grant access, so nothing was linked. Open the approval again to retry, or deny it.")
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, f.http)
	tok, err := f.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(rec.Verifier))
	if err != nil {
		f.cfg.Log.Warn("flow: cloudflare code exchange failed", "err", err)
		f.p.Message(w, http.StatusBadGateway, "Cloudflare refused", "Cloudflare did not accept the sign-in. Nothing was linked; open the approval again to retry.")
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
	if err := f.cfg.Links.LinkCloudflare(ctx, principal, links.CloudflareLink{AccountID: acct, Token: tok}, zones); err != nil {
		f.p.Unavailable(w, err)
		return
	}
	f.approve(w, r, ap, principal, "cloudflare-oauth", "Cloudflare account linked. The agent can continue.")
}

// consentedAccount is the account an OAuth access token acts on (the one
// the human consented to) and the zones it holds.
func (f *Flows) consentedAccount(ctx context.Context, tok *oauth2.Token, principal string) (string, []links.ZoneRef, error) {
	c := f.cfg.Cloudflare
	// Any well-formed id: Accounts names none in its path.
	probe, err := c.As(cloudflare.Credential{AccountID: strings.Repeat("0", 32), Token: oauth2.StaticTokenSource(tok)})
	if err != nil {
		return "", nil, err
	}
	// SPEC §11: the account is the one of the e-mail Stripe verified; the
	// login hint only suggests it, so the person who consented is checked.
	want, err := f.cfg.Links.Get(ctx, principal, tools.LinkStripeEmail)
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
