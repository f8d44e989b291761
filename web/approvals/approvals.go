package approvals

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/sessions"
)

// The approvals page (SPEC §8): where a human signs in as the principal and
// approves or denies what an agent without elicitation asked for.
//
// Session: after sign-in (approvals_signin.go) the browser holds
// tg_approvals = b64url(principal) "|" expiry (unix s) "|" session id (128
// random bits) "|" b64url(HMAC-SHA256). The HMAC key is derived from a
// 32-byte secret shared by every replica through Redis
// (tg:secret:approvals), so any replica accepts any replica's cookie;
// nothing is stored per session. The cookie is HttpOnly, SameSite=Strict,
// Path=/approvals, Secure behind an https public URL, and lives an hour.
//
// CSRF: every form carries a human.CSRF synchronizer token (HMAC over issue
// time and what it is bound to, under a second key derived from the same
// secret): the decision form's is bound to the cookie's session id and the
// approval id, the sign-out form's to the session id. Sign-in has no form:
// it is bound to the browser that started it by tg_approvals_login (see
// approvals_signin.go). Net/http's CrossOriginProtection (Sec-Fetch-Site /
// Origin) stands in front of every POST as a second line.
const (
	approvalsCookie      = "tg_approvals"
	approvalsLoginCookie = "tg_approvals_login"
	// Path is where the page is served; its cookies are scoped to it.
	Path                = "/approvals"
	approvalsPath       = Path
	approvalsSessionTTL = time.Hour
	approvalsLoginTTL   = 10 * time.Minute
	// maxCookie bounds a cookie before it is parsed: a principal is at most
	// 1 KiB, base64 makes it 4/3 of that.
	maxCookie = 2048
)

// Page serves /approvals. Its keys come from Redis on first use (and
// again after a failure), so a replica that starts while Redis is briefly
// away still serves the page once it is back.
type Page struct {
	cfg    Config
	views  *views
	now    func() time.Time
	cop    *http.CrossOriginProtection
	signin *signin.Client // nil: no sign-in configured (production without --idp-client-id)

	mu   sync.Mutex
	keys *pageKeys
}

// pageKeys are the page's two keys, derived from the shared secret.
type pageKeys struct {
	cookie []byte
	csrf   *human.CSRF
}

// pageSession is a signed-in human.
type pageSession struct {
	principal string
	expires   time.Time
	id        string
}

// Handle wraps a page handler: the security headers on every answer, and
// cross-origin POSTs refused before the handler runs.
func (p *Page) Handle(h http.HandlerFunc) http.Handler {
	return pageHeaders(p.cop.Handler(h))
}

func (p *Page) loadKeys(ctx context.Context) (*pageKeys, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys != nil {
		return p.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	secret, err := p.cfg.Secrets.Get(ctx, sharedsecret.Approvals)
	if err != nil {
		return nil, err
	}
	// One secret, two keys: a session cookie's MAC is never a CSRF token's.
	csrf, err := human.NewCSRF(derive(secret, "tollgate approvals csrf key v1"))
	if err != nil {
		return nil, err
	}
	p.keys = &pageKeys{cookie: derive(secret, "tollgate approvals cookie key v1"), csrf: csrf}
	return p.keys, nil
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func (k *pageKeys) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.cookie)
	m.Write([]byte("tollgate approvals session v1\x00"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// seal renders s as a cookie value.
func (k *pageKeys) seal(s pageSession) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(s.principal)) + "|" +
		strconv.FormatInt(s.expires.Unix(), 10) + "|" + s.id
	return payload + "|" + base64.RawURLEncoding.EncodeToString(k.mac(payload))
}

// open returns the session in a cookie value, or false for anything not
// sealed by seal under this key, or expired at now.
func (k *pageKeys) open(v string, now time.Time) (pageSession, bool) {
	if len(v) > maxCookie {
		return pageSession{}, false
	}
	parts := strings.Split(v, "|")
	if len(parts) != 4 {
		return pageSession{}, false
	}
	sum, err := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	// OWASP session management: authenticate the whole value in constant
	// time before reading any of it.
	if err != nil || !hmac.Equal(sum, k.mac(strings.Join(parts[:3], "|"))) {
		return pageSession{}, false
	}
	p, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || len(p) == 0 || parts[2] == "" {
		return pageSession{}, false
	}
	s := pageSession{principal: string(p), expires: time.Unix(exp, 0), id: parts[2]}
	if !now.Before(s.expires) {
		return pageSession{}, false
	}
	return s, true
}

// current is the signed-in human of r. errNoSession when there is none;
// any other error means the keys could not be loaded (fail closed).
func (p *Page) current(r *http.Request) (*pageKeys, pageSession, error) {
	k, err := p.loadKeys(r.Context())
	if err != nil {
		return nil, pageSession{}, err
	}
	c, err := r.Cookie(approvalsCookie)
	if err != nil {
		return k, pageSession{}, errNoSession
	}
	s, ok := k.open(c.Value, p.now())
	if !ok {
		return k, pageSession{}, errNoSession
	}
	return k, s, nil
}

var errNoSession = errors.New("approvals: not signed in")

// signedIn is current for GET pages: without a session it redirects to the
// sign-in page, which comes back here.
func (p *Page) signedIn(w http.ResponseWriter, r *http.Request) (*pageKeys, pageSession, bool) {
	k, s, err := p.current(r)
	switch {
	case errors.Is(err, errNoSession):
		http.Redirect(w, r, approvalsPath+"/login?next="+url.QueryEscape(safeNext(r.URL.Path)), http.StatusSeeOther)
		return nil, pageSession{}, false
	case err != nil:
		p.Unavailable(w, err)
		return nil, pageSession{}, false
	}
	return k, s, true
}

// safeNext returns v when it is a clean path of this page, else the list.
// Nothing else is ever a redirect target: no scheme, host, "//", backslash,
// control character, query or dot segment (no open redirect).
func safeNext(v string) string {
	const fallback = approvalsPath
	if v == "" || len(v) > 512 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
		return fallback
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return fallback
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" || path.Clean(u.Path) != u.Path {
		return fallback
	}
	if u.Path != approvalsPath && !strings.HasPrefix(u.Path, approvalsPath+"/") {
		return fallback
	}
	return u.Path
}

func (p *Page) secure() bool { return strings.HasPrefix(p.cfg.PublicURL, "https://") }

func (p *Page) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: approvalsPath, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: p.secure(), SameSite: http.SameSiteStrictMode,
	})
}

func (p *Page) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: approvalsPath, MaxAge: -1,
		HttpOnly: true, Secure: p.secure(), SameSite: http.SameSiteStrictMode})
}

// randomID is 128 bits from crypto/rand, base64url.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// logout serves POST /approvals/logout.
func (p *Page) logout(w http.ResponseWriter, r *http.Request) {
	k, s, err := p.current(r)
	if err != nil && !errors.Is(err, errNoSession) {
		p.Unavailable(w, err)
		return
	}
	if err != nil || r.ParseForm() != nil || !k.csrf.Check(s.id+"|logout", r.PostForm.Get("csrf"), p.now(), approvalsSessionTTL) {
		p.Forbidden(w)
		return
	}
	p.clearCookie(w, approvalsCookie)
	// Not back to the sign-in page: it would send the browser straight to
	// the identity provider, whose own session may sign it in again.
	p.Message(w, http.StatusOK, "Signed out", "You are signed out of the approvals page. Your session at the identity provider, if you have one, is its own.")
}

// list serves GET /approvals: the principal's pending approvals.
func (p *Page) list(w http.ResponseWriter, r *http.Request) {
	k, s, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	items, err := p.cfg.Approvals.List(r.Context(), s.principal, true)
	if err != nil {
		p.StoreError(w, err)
		return
	}
	p.views.render(w, http.StatusOK, "list", listView{
		Title: "Pending approvals", Principal: s.principal, Logout: k.csrf.Token(s.id+"|logout", p.now()),
		Items: items,
	})
}

// show serves GET /approvals/{id}: exactly what the agent asked, with
// Approve and Deny while it is pending.
func (p *Page) show(w http.ResponseWriter, r *http.Request) {
	k, s, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	ap, ok := p.own(w, r, s)
	if !ok {
		return
	}
	v := detailView{Title: "Approval", Principal: s.principal, Logout: k.csrf.Token(s.id+"|logout", p.now()),
		Approval: ap, Sections: fieldSections(ap.Fields), Wording: wording(ap.Kind)}
	if ap.Status == human.StatusPending {
		v.CSRF = k.csrf.Token(s.id+"|"+ap.ID, p.now())
	}
	p.views.render(w, http.StatusOK, "detail", v)
}

// own returns the approval named in the path when it is the signed-in
// principal's. Unknown ids and other principals' approvals get the same
// 404, which says nothing about the approval.
func (p *Page) own(w http.ResponseWriter, r *http.Request, s pageSession) (human.Approval, bool) {
	ap, err := p.cfg.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		p.StoreError(w, err)
		return human.Approval{}, false
	}
	// SPEC §8: the page authenticates the human as the principal.
	if ap.Binding.Principal != s.principal {
		p.NotFound(w)
		return human.Approval{}, false
	}
	return ap, true
}

// decide serves POST /approvals/{id} (decision=approve|deny, csrf=).
func (p *Page) decide(w http.ResponseWriter, r *http.Request) {
	k, s, err := p.current(r)
	if err != nil && !errors.Is(err, errNoSession) {
		p.Unavailable(w, err)
		return
	}
	id := r.PathValue("id")
	// OWASP CSRF: a state change needs the token of this session and this
	// approval; without a session there is no valid token.
	if err != nil || r.ParseForm() != nil || !k.csrf.Check(s.id+"|"+id, r.PostForm.Get("csrf"), p.now(), approvalsSessionTTL) {
		p.Forbidden(w)
		return
	}
	var approve bool
	switch r.PostForm.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		p.Message(w, http.StatusBadRequest, "Bad request", "The decision must be approve or deny. Nothing was done.")
		return
	}
	mine, ok := p.own(w, r, s)
	if !ok {
		return
	}
	if approve && mine.Kind.URLMode() {
		// Linking an account or adding a card is completed by the
		// provider's page the approval links to; Approve would only mark
		// it approved without anything having happened there.
		p.Message(w, http.StatusBadRequest, "Not approvable here", "This approval is completed on the provider's page it links to, not with Approve. Nothing was done.")
		return
	}
	by := "page:" + s.principal
	ap, err := p.cfg.Approvals.Decide(r.Context(), id, s.principal, approve, by)
	if err != nil {
		switch fault.CodeOf(err) {
		case human.ApprovalExpired:
			p.Message(w, http.StatusGone, "Expired", "This approval expired before it was decided, so nothing was done and nothing will be. The agent has to ask again.")
		case human.ApprovalDecided:
			p.Message(w, http.StatusConflict, "Already decided", "This approval was already decided; that decision stands and nothing was changed.")
		default:
			p.StoreError(w, err)
		}
		return
	}
	p.Decided(r.Context(), ap, by)
	if approve {
		p.Message(w, http.StatusOK, "Approved", "Approved. The agent can now retry.")
		return
	}
	p.Message(w, http.StatusOK, "Denied", "Denied. Nothing will be done.")
}

// Decided records a human's decision on an approval in the audit trail. A
// failed append is logged: the decision is already recorded.
func (p *Page) Decided(ctx context.Context, ap human.Approval, by string) {
	if _, err := p.cfg.Trail.Append(context.WithoutCancel(ctx), DecisionEntry(ap, by)); err != nil {
		p.cfg.Log.Error("audit append failed", "event", "gate", "approval", ap.ID, "err", err)
	}
	p.cfg.Log.Info("approval decided", "approval", ap.ID, "principal", ap.Binding.Principal, "status", ap.Status, "by", by)
}

// DecisionEntry is the audit entry of a human's decision on an
// approval (ap as Decide returned it), made on the page or with the CLI; by
// says who and how. It records what the human was shown, on one line.
func DecisionEntry(ap human.Approval, by string) sessions.Entry {
	decision := sessions.DecisionDeny
	if ap.Status == human.StatusApproved {
		decision = sessions.DecisionAllow
	}
	detail := map[string]string{"approval_id": ap.ID, "decided_by": sessions.Line(by, 256),
		"message": sessions.Line(ap.Summary, 900), "gate_digest": sessions.Line(ap.Binding.ArgsDigest, 200)}
	for _, n := range slices.Sorted(maps.Keys(ap.Fields)) {
		if len(detail) >= 32 {
			break
		}
		if _, taken := detail[n]; !taken {
			detail[n] = sessions.Line(ap.Fields[n], 200)
		}
	}
	return sessions.Entry{Event: "gate", Principal: ap.Binding.Principal, Session: ap.Binding.Session,
		Tool: ap.Binding.Tool, Decision: decision, Code: string(ap.Kind), Reason: "approval:" + string(ap.Status),
		Detail: detail}
}
