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

// issue signs the first token of a new task session, then opens the
// session with the token's hash and the exchange's audit entry in one
// script: the token is valid only once its session and entry exist, and
// both exist together or not at all.
func (s *STS) issue(ctx context.Context, g *grant, event string) (*Response, error) {
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
	g.sid = s.deps.Sessions.NewID()
	c := auth.Claims{
		Subject: g.principal, ClientID: g.clientID, SessionID: g.sid, ParentSessionID: g.sub.parentSID,
		Scope: strings.Join(g.scopes, " "), Act: auth.NewActorChain(g.chain...), AuthorizationDetails: g.details,
		MayAct: g.mayAct,
	}
	tok, exp, err := s.signed(c, g.now, g.expiry)
	if err != nil {
		return nil, err
	}
	sess := sessions.Session{
		ID: g.sid, Principal: g.principal, Actors: actors, ClientID: g.clientID, Scopes: g.scopes,
		AuthorizationDetails: details, Created: g.now, Expires: exp, Status: sessions.StatusActive,
		Description: g.req.Description, TokenHashes: []string{sessions.HashToken(tok)},
	}
	if g.sub.parentSID != "" {
		sess.Parent, sess.ParentPrincipal = g.sub.parentSID, g.sub.principal
	}
	e := g.entry() // event "exchange", for a Mint too
	if _, _, err := s.deps.Sessions.CreateAudited(ctx, sess, s.deps.Trail, e); err != nil {
		// A parent revoked meanwhile, or Redis down: no token.
		return nil, fromFault(err, ErrInvalidGrant)
	}
	s.deps.Audit.InfoContext(ctx, event, "principal", g.principal, "client_id", g.clientID, "actors", g.chain, "scope", g.scopes,
		"policy_ids", g.policyIDs, "sid", g.sid, "parent_sid", g.sub.parentSID, "mode", g.mode(), "decision", "allow")
	return &Response{
		AccessToken: tok, IssuedTokenType: TokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(g.now).Round(time.Second) / time.Second), Scope: c.Scope,
		AuthorizationDetails: g.details, SessionID: g.sid,
	}, nil
}

// signed fills the registered claims and signs.
func (s *STS) signed(c auth.Claims, now, exp time.Time) (string, time.Time, error) {
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
	return tok, exp, nil
}

// sign signs a further token of a live session and records its hash on the
// session (which extends the session to the token's expiry).
func (s *STS) sign(ctx context.Context, c auth.Claims, now, exp time.Time) (string, time.Time, error) {
	tok, exp, err := s.signed(c, now, exp)
	if err != nil {
		return "", time.Time{}, err
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
	return s.issue(ctx, &g, "mint")
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
