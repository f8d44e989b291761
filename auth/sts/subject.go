package sts

import (
	"context"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// verifySubject establishes who the subject token speaks for. Which
// verifiers may accept it follows its declared type (RFC 8693 §3): a task
// token is an access_token, a workload attestation a jwt.
func (s *STS) verifySubject(ctx context.Context, r *Request) (subject, error) {
	var errs []error
	if r.SubjectTokenType == TokenTypeAccessToken {
		c, err := s.deps.Access.Verify(ctx, r.SubjectToken)
		if err == nil {
			// An upstream task token is only as good as its live session:
			// a revoked parent cannot delegate.
			if err := s.deps.Sessions.Check(ctx, c.Subject, c.SessionID, c.ID); err != nil {
				return subject{}, fromFault(err, ErrInvalidGrant)
			}
			return subject{
				principal: c.Subject, kind: "task", scopes: c.Scopes(), details: c.AuthorizationDetails,
				chain: c.Act.Chain(), expiry: c.Expiry.Time(), parentSID: c.SessionID, mayAct: c.MayAct, claims: c,
			}, nil
		}
		errs = append(errs, err)
	}
	for _, v := range s.subjects {
		c, err := v.Verify(ctx, r.SubjectToken)
		if err == nil {
			var scopes []string
			if c.Scope != "" {
				scopes = c.Scopes()
			}
			return subject{principal: c.Principal(), kind: "user", scopes: scopes, mayAct: c.MayAct,
				expiry: c.Expiry.Time(), email: c.Email, emailVerified: c.EmailVerified}, nil
		}
		errs = append(errs, err)
	}
	if r.SubjectTokenType == TokenTypeJWT {
		for _, a := range s.attestors {
			ag, err := a.Attest(ctx, auth.Evidence{Token: r.SubjectToken})
			if err == nil {
				return subject{principal: ag.ID, kind: "agent", expiry: ag.Expiry, agent: &ag}, nil
			}
			errs = append(errs, err)
		}
	}
	return subject{}, pickRefusal(errs, "subject_token")
}

// attest verifies the actor token with the configured attestors.
func (s *STS) attest(ctx context.Context, token string) (auth.Agent, error) {
	var errs []error
	for _, a := range s.attestors {
		ag, err := a.Attest(ctx, auth.Evidence{Token: token})
		if err == nil {
			return ag, nil
		}
		errs = append(errs, err)
	}
	return auth.Agent{}, pickRefusal(errs, "actor_token")
}

// pickRefusal turns verifier errors into one invalid_request (RFC 8693
// §2.2.2). A key-store outage is 503: fail closed, and say it is not the
// caller's fault. Otherwise the most specific rejection wins: one from a
// verifier whose issuer matched says more than "wrong issuer".
func pickRefusal(errs []error, param string) *Error {
	var best error
	for _, err := range errs {
		if fault.CodeOf(err) == fault.Unavailable || auth.ReasonOf(err) == auth.ReasonKeysUnavailable {
			return &Error{Code: ErrUnavailable, Description: "the token store is unavailable; nothing was issued, retry shortly", Status: 503, Cause: err}
		}
		if best == nil || auth.ReasonOf(best) == auth.ReasonWrongIssuer || auth.ReasonOf(best) == auth.ReasonWrongTyp {
			best = err
		}
	}
	e := oauthErr(ErrInvalidRequest, "%s is not valid here", param)
	if best != nil {
		e.Cause = best
		e.Description += " (" + string(auth.ReasonOf(best)) + "): " + fault.PublicOf(best)
	}
	return e
}

// policyAgent describes an attested agent to the policy.
func policyAgent(a auth.Agent) policy.Agent {
	return policy.Agent{ID: a.ID, Kind: policy.Kind(a.Kind), Attrs: a.Detail}
}

// upstreamAgent describes the agent that holds an upstream task token, by
// its id alone (its attestation happened at its own exchange).
func (s *STS) upstreamAgent(id string) policy.Agent {
	kind := policy.KindJWT
	switch {
	case strings.HasPrefix(id, "unix:"):
		kind = policy.KindUnix
	case strings.HasPrefix(id, "spiffe://"+auth.DevTrustDomain+"/") && s.cfg.Sandbox:
		kind = policy.KindDev
	}
	return policy.Agent{ID: id, Kind: kind}
}

func minTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.IsZero() {
			continue
		}
		if m.IsZero() || t.Before(m) {
			m = t
		}
	}
	return m
}
