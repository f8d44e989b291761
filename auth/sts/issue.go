package sts

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

// issue opens the task session and signs its first token.
func (s *STS) issue(ctx context.Context, g *grant) (*Response, error) {
	var details json.RawMessage
	if len(g.details) > 0 {
		b, err := json.Marshal(g.details)
		if err != nil {
			return nil, fromFault(err, ErrServerError)
		}
		details = b
	}
	actors := g.chain
	if len(actors) == 0 {
		actors = []string{g.clientID}
	}
	sess := sessions.Session{
		Principal: g.principal, Actors: actors, ClientID: g.clientID, Scopes: g.scopes,
		AuthorizationDetails: details, Created: g.now, Expires: g.expiry, Status: sessions.StatusActive,
		Description: g.req.Description,
	}
	if g.sub.parentSID != "" {
		sess.Parent, sess.ParentPrincipal = g.sub.parentSID, g.sub.principal
	}
	created, err := s.deps.Sessions.Create(ctx, sess)
	if err != nil {
		// A parent revoked meanwhile, or Redis down: no token.
		return nil, fromFault(err, ErrInvalidGrant)
	}
	g.sid = created.ID
	c := auth.Claims{
		Subject: g.principal, ClientID: g.clientID, SessionID: created.ID, ParentSessionID: g.sub.parentSID,
		Scope: strings.Join(g.scopes, " "), Act: auth.NewActorChain(g.chain...), AuthorizationDetails: g.details,
		MayAct: g.mayAct,
	}
	tok, exp, err := s.sign(ctx, c, g.now, g.expiry)
	if err != nil {
		return nil, err
	}
	return &Response{
		AccessToken: tok, IssuedTokenType: TokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(g.now).Round(time.Second) / time.Second), Scope: c.Scope,
		AuthorizationDetails: g.details, SessionID: created.ID,
	}, nil
}

// sign fills the registered claims, signs, and records the token's hash on
// its session (which extends the session to the token's expiry).
func (s *STS) sign(ctx context.Context, c auth.Claims, now, exp time.Time) (string, time.Time, error) {
	jti, err := newJTI()
	if err != nil {
		return "", time.Time{}, fromFault(err, ErrServerError)
	}
	exp = exp.Truncate(time.Second)
	c.Issuer, c.Audience, c.ID = s.cfg.Issuer, s.cfg.Resource, jti
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(exp)
	tok, err := s.deps.Signer.Sign(c, auth.TypAccessToken)
	if err != nil {
		return "", time.Time{}, fromFault(err, ErrServerError)
	}
	if err := s.deps.Sessions.AddToken(ctx, c.Subject, c.SessionID, sessions.HashToken(tok), exp); err != nil {
		return "", time.Time{}, fromFault(err, ErrInvalidGrant)
	}
	return tok, exp, nil
}

// LocalGrant describes a session minted without an exchange request: the
// sandbox's stdio server attests its parent process and acts for the local
// OS user (SPEC §2). It runs the same policy, narrowing and session code.
type LocalGrant struct {
	Principal string // e.g. user:alice@localhost
	Agent     auth.Agent
	Scopes    []string
	Details   auth.AuthorizationDetails
}

// Mint opens a task session for a LocalGrant and returns its first token.
func (s *STS) Mint(ctx context.Context, lg LocalGrant) (*Response, error) {
	now := s.cfg.Clock()
	g := grant{
		req: &Request{Scopes: nil, Details: lg.Details, HasDetails: len(lg.Details) > 0, Description: "local stdio session"},
		sub: subject{principal: lg.Principal, kind: "user", scopes: lg.Scopes, expiry: now.Add(s.cfg.TokenTTL)},
		now: now,
	}
	if err := s.delegationGrant(&g, lg.Agent); err != nil {
		s.audit(ctx, "mint refused", &g, err)
		return nil, err
	}
	if err := s.narrow(&g); err != nil {
		s.audit(ctx, "mint refused", &g, err)
		return nil, err
	}
	resp, err := s.issue(ctx, &g)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, "mint", &g, nil); err != nil {
		return nil, s.unissue(ctx, &g, err)
	}
	return resp, nil
}

// Reissue signs a fresh token for the live session of c (same principal,
// chain, scope and details), so a long stdio session keeps working without
// a new session that would outlive a revoke. It fails once the session is
// revoked or expired.
func (s *STS) Reissue(ctx context.Context, c *auth.Claims) (string, error) {
	if err := s.deps.Sessions.Check(ctx, c.Subject, c.SessionID, c.ID); err != nil {
		return "", err
	}
	now := s.cfg.Clock()
	next := *c
	tok, _, err := s.sign(ctx, next, now, now.Add(s.cfg.TokenTTL))
	if err != nil {
		return "", fault.Wrap(err, fault.Unavailable, "could not renew the local session's token; restart tollgate stdio")
	}
	return tok, nil
}
