package approvals

// Sign-in to the approvals page, through OpenID Connect (package signin):
//
//	GET /approvals/login?next=…          → the IdP's authorization endpoint
//	GET /approvals/callback?code=…&state=…  ← the IdP, once the human signed in
//
// One code path for every deployment: production signs in at --idp-issuer
// with --idp-client-id, the sandbox at its own IdP (fixtures/idp, served at
// <public-url>/dev/idp). The signed-in principal is "user:" + the ID token's
// sub, the name the token exchange gives the same human's subject tokens.
//
// Between the two requests, the sign-in's state, nonce and PKCE verifier
// are kept server-side (flowstate, "signin:<state>", 10 minutes) and taken
// once by the callback: a replayed callback finds nothing. The browser holds
// only tg_approvals_login, 128 random bits that bind the sign-in to the
// browser that started it, so that a callback link made in someone else's
// browser fails in the victim's (login CSRF). That cookie is SameSite=Lax:
// the IdP's redirect back is a cross-site top-level navigation, which
// carries no Strict cookie.
//
// The callback answers with a page that refreshes to where the human was
// going, not with a redirect: a browser may withhold SameSite=Strict
// cookies, the new session's included, for the rest of a redirect chain
// that began at another site.

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/signin"
)

// signInKind marks a flowstate record as a sign-in's.
const signInKind = "signin"

// CallbackPath is the redirect URI to register at the IdP, under the
// public URL.
const CallbackPath = Path + "/callback"

// stateRE is what signin.Begin makes a state of; anything else is not looked up.
var stateRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// loginNonce is the pre-session cookie's value, when well formed.
func loginNonce(r *http.Request) string {
	c, err := r.Cookie(approvalsLoginCookie)
	if err != nil || len(c.Value) != 22 {
		return ""
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// login serves GET /approvals/login?next=…: it starts a sign-in at the IdP.
func (p *Page) login(w http.ResponseWriter, r *http.Request) {
	if p.signin == nil {
		p.Message(w, http.StatusServiceUnavailable, "Sign-in is not configured",
			"This tollgate has no sign-in client at the identity provider (--idp-client-id), so nobody can sign in here. Ask the operator to decide the approval: tollgate approvals approve ID.")
		return
	}
	ctx := r.Context()
	target, req, err := p.signin.Begin(ctx)
	if err != nil {
		p.cfg.Log.Warn("approvals page: sign-in cannot start", "issuer", p.signin.Issuer(), "err", err)
		p.Message(w, http.StatusServiceUnavailable, "Sign-in Unavailable", fault.PublicOf(err))
		return
	}
	browser := loginNonce(r)
	if browser == "" {
		browser = randomID()
	}
	rec := flowstate.Record{Kind: signInKind, State: req.State, Nonce: req.Nonce, Verifier: req.Verifier,
		Next: safeNext(r.URL.Query().Get("next")), Browser: browser}
	if err := p.cfg.States.Save(ctx, signInKind+":"+req.State, rec); err != nil {
		p.Unavailable(w, err)
		return
	}
	// Refreshed on every sign-in, so that every sign-in in flight in this
	// browser (another tab's too) has a live binding.
	http.SetCookie(w, &http.Cookie{Name: approvalsLoginCookie, Value: browser, Path: approvalsPath, MaxAge: int(approvalsLoginTTL.Seconds()),
		HttpOnly: true, Secure: p.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback serves GET /approvals/callback: the IdP's answer.
func (p *Page) callback(w http.ResponseWriter, r *http.Request) {
	if p.signin == nil {
		p.NotFound(w)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if !stateRE.MatchString(state) {
		p.Message(w, http.StatusBadRequest, "Sign-in refused", "This sign-in link has no valid state. Nothing was done. Sign in again from the approvals page.")
		return
	}
	// Taken before anything else is checked: whatever the answer, this
	// state (its nonce and verifier) is never used again.
	rec, err := p.cfg.States.Take(ctx, signInKind+":"+state)
	switch {
	case fault.CodeOf(err) == fault.NotFound || err == nil && rec.Kind != signInKind:
		p.Message(w, http.StatusForbidden, "Sign-in refused", "This sign-in is unknown, expired or already finished. Nothing was done. Sign in again from the approvals page.")
		return
	case err != nil:
		p.Unavailable(w, err)
		return
	}
	// Login CSRF: the sign-in must finish in the browser that started it.
	if b := loginNonce(r); b == "" || subtle.ConstantTimeCompare([]byte(b), []byte(rec.Browser)) != 1 {
		p.cfg.Log.Warn("approvals page: sign-in refused", "reason", "callback in another browser")
		p.Message(w, http.StatusForbidden, "Sign-in refused", "This sign-in was started in another browser, or this browser's sign-in cookie expired. Nothing was done. Sign in again from the approvals page.")
		return
	}
	if e := q.Get("error"); e != "" {
		if len(e) > 64 {
			e = e[:64]
		}
		p.Message(w, http.StatusUnauthorized, "Sign-in not completed", "The identity provider did not sign you in ("+url.QueryEscape(e)+"). Nothing was done. Sign in again from the approvals page.")
		return
	}
	// RFC 9207 §2.4: an answer that names another issuer comes from
	// another provider (a mix-up); the code is not this one's to redeem.
	if q.Has("iss") && q.Get("iss") != p.signin.Issuer() {
		p.Message(w, http.StatusUnauthorized, "Sign-in refused", "The answer came from another identity provider than this tollgate's. Nothing was done. Sign in again from the approvals page.")
		return
	}
	id, err := p.signin.Finish(ctx, signin.Request{State: state, Nonce: rec.Nonce, Verifier: rec.Verifier}, code)
	if err != nil {
		status := http.StatusUnauthorized
		if fault.CodeOf(err) == fault.Unavailable {
			status = http.StatusServiceUnavailable
		}
		p.cfg.Log.Warn("approvals page: sign-in refused", "issuer", p.signin.Issuer(), "err", err)
		p.Message(w, status, "Sign-in refused", fault.PublicOf(err))
		return
	}
	k, err := p.loadKeys(ctx)
	if err != nil {
		p.Unavailable(w, err)
		return
	}
	now := p.now()
	s := pageSession{principal: id.Principal(), expires: now.Add(approvalsSessionTTL), id: randomID()}
	p.setCookie(w, approvalsCookie, k.seal(s), approvalsSessionTTL)
	p.cfg.Log.Info("approvals page: signed in", "principal", s.principal, "issuer", p.signin.Issuer())
	p.views.render(w, http.StatusOK, "signedin", signedInView{Title: "Signed in", Principal: s.principal, Next: safeNext(rec.Next)})
}
