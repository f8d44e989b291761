package sts

import (
	"context"
	"slices"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
)

// DefaultMaxTaskLife is how long refreshes may keep a task session going.
const DefaultMaxTaskLife = 12 * time.Hour

// refresh issues a fresh token of the subject task token's own session to
// the agent that holds it (its attestation is the actor token). It keeps
// the session, and with it the scope, the resources and the budget: an
// agent that refreshes does not start a new task with a new budget. The
// session must be live; the new token lives at most TokenTTL, no longer
// than the actor's attestation, and never past MaxTaskLife after the
// session was opened. A request that asks for another scope or details is
// refused: narrowing is a delegation to a sub-agent.
func (s *STS) refresh(ctx context.Context, g *grant, actor auth.Agent) (*Response, error) {
	c := g.sub.claims
	g.principal, g.clientID, g.chain, g.sid = c.Subject, c.ClientID, c.Act.Chain(), c.SessionID
	g.scopes, g.details = c.Scopes(), c.AuthorizationDetails
	fail := func(err error) (*Response, error) {
		s.audit(ctx, "refresh refused", g, err)
		return nil, err
	}
	if g.req.Scopes != nil && !slices.Equal(sortedCopy(g.req.Scopes), sortedCopy(c.Scopes())) || g.req.HasDetails {
		return fail(oauthErr(ErrInvalidRequest, "a refresh keeps its task session's scope and authorization_details; send neither, "+
			"or exchange for a sub-agent to narrow them. Nothing was issued"))
	}
	sess, err := s.deps.Sessions.Get(ctx, c.Subject, c.SessionID)
	if err != nil {
		return fail(fromFault(err, ErrInvalidGrant))
	}
	exp := minTime(g.now.Add(s.cfg.TokenTTL), actor.Expiry, sess.Created.Add(s.cfg.MaxTaskLife))
	if !exp.After(g.now.Add(time.Second)) {
		return fail(oauthErr(ErrInvalidGrant, "task session %s has run for its longest life (%s); start a new task by exchanging the human's token. Nothing was issued",
			c.SessionID, s.cfg.MaxTaskLife))
	}
	next := *c
	tok, exp, err := s.sign(ctx, next, g.now, exp)
	if err != nil {
		return fail(err)
	}
	e := g.entry()
	e.Event, e.Detail["mode"], e.ParentSession = "refresh", "refresh", c.ParentSessionID
	if _, err := s.deps.Trail.Append(context.WithoutCancel(ctx), e); err != nil {
		s.deps.Audit.ErrorContext(ctx, "audit append of a refresh failed", "sid", g.sid, "err", err)
	}
	s.deps.Audit.InfoContext(ctx, "refresh", "principal", g.principal, "client_id", g.clientID, "actors", g.chain, "sid", g.sid, "decision", "allow")
	return &Response{
		AccessToken: tok, IssuedTokenType: TokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(g.now).Round(time.Second) / time.Second), Scope: c.Scope,
		AuthorizationDetails: c.AuthorizationDetails, SessionID: c.SessionID,
	}, nil
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
