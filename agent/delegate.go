package agent

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Delegation describes a sub-agent's share of a task: its attestation and
// what it asks for, which must fit inside what the parent holds (SPEC §4:
// a sub-agent's exchange uses the parent's task token as its subject, and
// tollgate refuses anything wider).
type Delegation struct {
	// Actor is the sub-agent's own attestation (required): the delegation
	// chain names it.
	Actor Attestor
	// Scope: nil inherits the parent's scopes; otherwise a subset of them.
	Scope []string
	// Resources: nil inherits the parent's domains; otherwise a subset.
	Resources []string
	// Budgets: a provider left out inherits the parent's budget there; a
	// budget may not exceed the parent's, nor exist where it has none.
	Budgets     []Budget
	Description string
}

// Delegate derives a TokenSource for a sub-agent whose tokens are
// exchanged from this source's task token, and makes its first exchange
// now, so a request wider than the parent is refused here: the error is an
// *Error with Op "delegate" and the server's reason (invalid_scope for a
// scope the parent lacks, invalid_request for a domain or budget beyond
// the parent's). The sub-agent's later exchanges ask this source for its
// current token, so the two stay fresh together.
func (ts *TokenSource) Delegate(ctx context.Context, d Delegation) (*TokenSource, error) {
	cfg := Config{
		Issuer: ts.cfg.Issuer, Actor: d.Actor, Scope: d.Scope, Resources: d.Resources, Budgets: d.Budgets,
		Resource: ts.cfg.Resource, Description: d.Description, HTTPClient: ts.cfg.HTTPClient, Clock: ts.cfg.Clock,
		RefreshBefore: ts.cfg.RefreshBefore, Jitter: ts.cfg.Jitter,
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = -1 // the parent had it off
	}
	tokenURL, details, err := cfg.validate()
	if err != nil {
		if e := asError(err); e != nil {
			e.Op = "delegate"
			e.Description = strings.Replace(e.Description, "Config.", "Delegation.", 1)
		}
		return nil, err
	}
	child := &TokenSource{cfg: cfg, tokenURL: tokenURL, details: details, op: "delegate", parent: ts}
	if _, err := child.TokenContext(ctx); err != nil {
		return nil, err
	}
	return child, nil
}

// Revoke ends the task: it revokes the current task token's session and,
// with it, every sub-agent's (RFC 7009 at /oauth/revoke), and stops this
// TokenSource, so it never exchanges again. Sub-agents' TokenSources stop
// on their next exchange.
func (ts *TokenSource) Revoke(ctx context.Context) error {
	ts.mu.Lock()
	c := ts.cur
	ts.mu.Unlock()
	ts.stop(&Error{Op: "token", Code: SessionRevoked, Description: "this agent revoked its task"})
	if c == nil {
		return nil
	}
	return ts.revoke(ctx, c.tok.AccessToken)
}

// revoke revokes one task token's session (RFC 7009).
func (ts *TokenSource) revoke(ctx context.Context, token string) error {
	u := strings.TrimSuffix(ts.tokenURL, "/token") + "/revoke"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
	if err != nil {
		return &Error{Op: "revoke", Code: Misconfigured, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := ts.cfg.HTTPClient.Do(req)
	if err != nil {
		return &Error{Op: "revoke", Code: Unreachable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return oauthError("revoke", resp)
	}
	return nil
}
