package approvals

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Store is the approvals the page lists and decides (human.Approvals).
type Store interface {
	List(ctx context.Context, principal string, pendingOnly bool) ([]human.Approval, error)
	Get(ctx context.Context, id string) (human.Approval, error)
	Decide(ctx context.Context, id, principal string, approve bool, by string) (human.Approval, error)
}

// Secrets yields the secret every replica shares (sharedsecret.Store); the
// page's cookie and CSRF keys are derived from sharedsecret.Approvals.
type Secrets interface {
	Get(ctx context.Context, n sharedsecret.Name) ([]byte, error)
}

// States keeps a sign-in's state, nonce and verifier between the redirect
// to the identity provider and its callback (flowstate.Store).
type States interface {
	Save(ctx context.Context, key string, rec flowstate.Record) error
	Take(ctx context.Context, key string) (flowstate.Record, error)
}

// Trail is where decisions are audited (sessions.Audit).
type Trail interface {
	Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error)
}

// Config is what the page needs. Approvals, Secrets, States and Trail are
// required; SignIn nil means nobody can sign in here (approvals are then
// decided with the CLI).
type Config struct {
	// PublicURL is tollgate's public URL; an https one makes the cookies
	// Secure.
	PublicURL string
	Approvals Store
	Secrets   Secrets
	States    States
	Trail     Trail
	SignIn    *signin.Client
	Log       *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// New builds the page. It reads nothing from Redis yet: the keys are
// loaded on first use.
func New(cfg Config) (*Page, error) {
	if cfg.Approvals == nil || cfg.Secrets == nil || cfg.States == nil || cfg.Trail == nil {
		return nil, errors.New("approvals: Config needs Approvals, Secrets, States and Trail")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Page{cfg: cfg, views: newViews(), now: now, cop: http.NewCrossOriginProtection(), signin: cfg.SignIn}, nil
}

// Mount serves the page's routes on mux.
func (p *Page) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+Path, p.Handle(p.list))
	mux.Handle("GET "+Path+"/login", p.Handle(p.login))
	mux.Handle("GET "+CallbackPath, p.Handle(p.callback))
	mux.Handle("POST "+Path+"/logout", p.Handle(p.logout))
	mux.Handle("GET "+Path+"/{id}", p.Handle(p.show))
	mux.Handle("POST "+Path+"/{id}", p.Handle(p.decide))
}

// Session is the human signed in on the page, for the pages that build on
// it (web/flows).
type Session struct {
	// Principal is who the human signed in as ("user:" + the ID token's sub).
	Principal string
	// ID is the page session's random id: what a CSRF token is bound to.
	ID string
}

// SignedIn is the signed-in human of r. Without one it redirects to the
// sign-in page and returns false; when the keys cannot be loaded it
// answers 503 and returns false (fail closed).
func (p *Page) SignedIn(w http.ResponseWriter, r *http.Request) (Session, bool) {
	_, s, ok := p.signedIn(w, r)
	return Session{Principal: s.principal, ID: s.id}, ok
}

// Own is the approval named in r's path when it is s's; otherwise it
// answers 404 (whoever's it is) and returns false.
func (p *Page) Own(w http.ResponseWriter, r *http.Request, s Session) (human.Approval, bool) {
	return p.own(w, r, pageSession{principal: s.Principal, id: s.ID})
}

// Key derives a key for another cookie from the page's cookie key: label
// names its use, so no two cookies share a MAC key.
func (p *Page) Key(ctx context.Context, label string) ([]byte, error) {
	k, err := p.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	return derive(k.cookie, label), nil
}

// Secure reports whether cookies are Secure (an https public URL).
func (p *Page) Secure() bool { return p.secure() }

// Now is the page's clock.
func (p *Page) Now() time.Time { return p.now() }
