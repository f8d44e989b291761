package agent

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource is an oauth2.TokenSource of tollgate task tokens. It
// exchanges on first use, caches the token, and exchanges again before
// the token expires: one exchange at a time, however many goroutines ask.
// It is safe for concurrent use.
type TokenSource struct {
	cfg      Config
	tokenURL string
	details  string
	op       string       // "exchange", or "delegate" for a sub-agent's
	parent   *TokenSource // a sub-agent's subject, or nil

	mu        sync.Mutex
	cur       *cached
	flight    *flight
	failures  int       // consecutive failed exchanges
	failedAt  time.Time // the last failure
	lastErr   error
	stoppedBy error // set once the task is over: every call returns it
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// cached is a token with the times that matter for it.
type cached struct {
	tok       *oauth2.Token
	issued    time.Time
	usable    time.Time // after it, the token is not handed out
	refreshAt time.Time // after it, a call exchanges again first
}

type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// New validates cfg. It makes no request: the first Token exchanges.
func New(cfg Config) (*TokenSource, error) {
	tokenURL, details, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &TokenSource{cfg: cfg, tokenURL: tokenURL, details: details, op: "exchange"}, nil
}

// Token returns a valid task token, exchanging first if there is none or
// it is due for refresh. It implements oauth2.TokenSource.
func (ts *TokenSource) Token() (*oauth2.Token, error) {
	return ts.TokenContext(context.Background())
}

// TokenContext is Token bounded by ctx. ctx only bounds the wait: an
// exchange already under way finishes for the other callers.
func (ts *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return ts.token(ctx, 0)
}

// refreshMargin: a token closer than this to its expiry is not sent to be
// refreshed (it could expire on the way); the TokenSource exchanges anew.
const refreshMargin = 5 * time.Second

// Backoff after failed exchanges: a caller in a loop does not turn into a
// stream of refused requests.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// token is TokenContext; minLeft asks, in addition, for a token that is
// valid for at least that long (a sub-agent's token never outlives its
// subject's).
func (ts *TokenSource) token(ctx context.Context, minLeft time.Duration) (*oauth2.Token, error) {
	ts.mu.Lock()
	if ts.stoppedBy != nil {
		err := ts.stoppedBy
		ts.mu.Unlock()
		return nil, err
	}
	now := ts.cfg.Clock()
	c := ts.cur
	usable := c != nil && now.Before(c.usable)
	if usable && !ts.due(c, now, minLeft) {
		ts.mu.Unlock()
		return c.tok, nil
	}
	if ts.flight == nil && ts.failures > 0 && now.Before(ts.failedAt.Add(backoff(ts.failures))) {
		// A recent exchange failed: keep a usable token, else report
		// that failure again rather than send the same request again.
		err := ts.lastErr
		ts.mu.Unlock()
		if usable {
			return c.tok, nil
		}
		return nil, err
	}
	f := ts.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		ts.flight = f
		go ts.run(context.WithoutCancel(ctx), f)
	}
	ts.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err == nil {
		return f.tok, nil
	}
	// A failed refresh leaves a still-usable token usable.
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stoppedBy == nil && ts.cur != nil && ts.cfg.Clock().Before(ts.cur.usable) {
		return ts.cur.tok, nil
	}
	return nil, f.err
}

// due reports whether c should be replaced before it is handed out.
func (ts *TokenSource) due(c *cached, now time.Time, minLeft time.Duration) bool {
	if !now.Before(c.refreshAt) {
		return true
	}
	// A sub-agent asks for more life than is left: refresh, but never
	// before half the token's life is over (a server that issues short
	// tokens must not cause an exchange per call).
	half := c.issued.Add(c.tok.Expiry.Sub(c.issued) / 2)
	return minLeft > 0 && c.tok.Expiry.Sub(now) < minLeft && !now.Before(half)
}

func backoff(failures int) time.Duration {
	d := minBackoff << min(failures-1, 10)
	return min(d, maxBackoff)
}

// run makes the exchange for a flight and publishes its outcome.
func (ts *TokenSource) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, 2*exchangeTimeout)
	defer cancel()
	tok, c, err := ts.fetch(ctx)

	ts.mu.Lock()
	if err == nil && ts.stoppedBy != nil {
		// Stopped while this exchange was under way: its session must not
		// outlive the task.
		issued := tok.AccessToken
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exchangeTimeout)
			defer cancel()
			_ = ts.revoke(rctx, issued)
		}()
		tok, err = nil, ts.stoppedBy
	}
	if err == nil {
		ts.cur, ts.failures, ts.lastErr = c, 0, nil
	} else {
		ts.failures++
		ts.failedAt, ts.lastErr = ts.cfg.Clock(), err
		if e := asError(err); e != nil && e.Code == SessionRevoked {
			ts.stoppedBy = err
		}
	}
	f.tok, f.err = tok, err
	ts.flight = nil
	ts.mu.Unlock()
	close(f.done)
}

// fetch refreshes the task token while the current one is valid, so the
// task keeps its session and budget; without one it gets the subject token
// and exchanges it, which opens a new task session.
func (ts *TokenSource) fetch(ctx context.Context) (*oauth2.Token, *cached, error) {
	now := ts.cfg.Clock()
	ts.mu.Lock()
	cur := ts.cur
	ts.mu.Unlock()
	if cur != nil && ts.cfg.Subject != nil || cur != nil && ts.parent != nil {
		if now.Before(cur.tok.Expiry.Add(-refreshMargin)) {
			// The server refreshes a task token for the agent it was issued
			// to: the same session, scope, resources and budget.
			tok, err := ts.exchange(ctx, subjectToken{token: cur.tok.AccessToken, typ: TokenTypeAccessToken, refresh: true}, now)
			if err != nil {
				return nil, nil, err
			}
			return tok, ts.schedule(tok, now), nil
		}
	}
	sub, err := ts.subject(ctx)
	if err != nil {
		return nil, nil, err
	}
	tok, err := ts.exchange(ctx, sub, now)
	if err != nil {
		return nil, nil, err
	}
	return tok, ts.schedule(tok, now), nil
}

// subject returns the exchange's subject token; none in self mode.
func (ts *TokenSource) subject(ctx context.Context) (subjectToken, error) {
	if ts.parent != nil {
		// Ask the parent for a token that outlives this one's refresh lead,
		// so the child's token is not cut short by an old parent token.
		t, err := ts.parent.token(ctx, ts.cfg.RefreshBefore+ts.cfg.Jitter+time.Minute)
		if err != nil {
			if e := asError(err); e != nil && e.Code == SessionRevoked {
				return subjectToken{}, e
			}
			return subjectToken{}, &Error{Op: ts.op, Code: NoSubject, Description: "the parent TokenSource has no token", Err: err}
		}
		return subjectToken{token: t.AccessToken, typ: TokenTypeAccessToken}, nil
	}
	if ts.cfg.Subject == nil {
		return subjectToken{}, nil
	}
	t, err := ts.cfg.Subject.Token()
	if err != nil {
		if e := asError(err); e != nil {
			return subjectToken{}, e
		}
		return subjectToken{}, &Error{Op: "subject", Code: NoSubject, Err: err}
	}
	if t.AccessToken == "" {
		return subjectToken{}, &Error{Op: "subject", Code: NoSubject, Description: "the subject TokenSource returned an empty token"}
	}
	typ := ts.cfg.SubjectTokenType
	if typ == "" {
		typ, _ = t.Extra("issued_token_type").(string)
	}
	if typ == "" {
		typ = TokenTypeIDToken
	}
	return subjectToken{token: t.AccessToken, typ: typ}, nil
}

// schedule decides when tok stops being handed out and when it is
// refreshed: RefreshBefore plus a random jitter before expiry, but not
// before half its life, so a short-lived token is not exchanged per call.
func (ts *TokenSource) schedule(tok *oauth2.Token, now time.Time) *cached {
	life := tok.Expiry.Sub(now)
	lead := ts.cfg.RefreshBefore
	if ts.cfg.Jitter > 0 {
		lead += rand.N(ts.cfg.Jitter)
	}
	lead = min(lead, life/2)
	// The last seconds are left out, as the request still has to reach
	// the server (oauth2's own expiry margin is 10s).
	margin := min(10*time.Second, life/4)
	return &cached{tok: tok, issued: now, usable: tok.Expiry.Add(-margin), refreshAt: tok.Expiry.Add(-lead)}
}

// invalidate drops the cached token if it is still stale, so the next call
// exchanges; a token another caller already replaced stays.
func (ts *TokenSource) invalidate(stale string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.cur != nil && ts.cur.tok.AccessToken == stale {
		ts.cur = nil
	}
}

// stop ends the TokenSource: every later call returns err.
func (ts *TokenSource) stop(err error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stoppedBy == nil {
		ts.stoppedBy = err
	}
	ts.cur = nil
}
