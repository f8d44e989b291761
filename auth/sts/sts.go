package sts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Config configures the STS.
type Config struct {
	Issuer   string        // tollgate's public URL (iss of every token)
	Resource string        // the canonical MCP resource URL, the only audience
	TokenTTL time.Duration // lifetime of issued tokens (never past the subject's)
	// MaxTaskLife bounds how long refreshes keep one task session going
	// after it was opened (12h): past it, the agent starts a new task.
	MaxTaskLife time.Duration
	Sandbox     bool // dev agents (spiffe://tollgate.sandbox/...) are recognised
	Clock       func() time.Time
}

// Deps are the STS's collaborators.
type Deps struct {
	Signer    *auth.KeyRing           // sts namespace
	Access    *auth.AccessVerifier    // tollgate task tokens (upstream subjects)
	Subjects  []*auth.SubjectVerifier // user IdPs (the dev IdP in the sandbox)
	Attestors []auth.Attestor         // workload attestation by JWT (dev in the sandbox)
	Policy    *policy.Engine          // who may act for whom
	Sessions  *sessions.Store         // task sessions
	Trail     *sessions.Audit         // the audit trail: every exchange, decision and revocation
	Audit     *slog.Logger            // the same decisions as log lines
	Observe   *observe.Observer       // counts exchanges by mode and result (nil: none)
}

// STS issues task tokens.
type STS struct {
	cfg  Config
	deps Deps
	// subjects and attestors are Deps.Subjects and Deps.Attestors behind
	// caches of what they verified (auth.CachedSubjectVerifier,
	// auth.CachedAttestor): an agent exchanging the same human's token
	// again pays for its signature checks once a minute.
	subjects  []subjectVerifier
	attestors []auth.Attestor
}

type subjectVerifier interface {
	Verify(ctx context.Context, token string) (*auth.SubjectClaims, error)
}

// New validates cfg and deps.
func New(cfg Config, deps Deps) (*STS, error) {
	switch {
	case cfg.Issuer == "" || cfg.Resource == "":
		return nil, errors.New("sts: Config.Issuer and Config.Resource are required")
	case cfg.TokenTTL <= 0 || cfg.TokenTTL > time.Hour:
		return nil, fmt.Errorf("sts: Config.TokenTTL %s out of range (0, 1h]", cfg.TokenTTL)
	case deps.Signer == nil || deps.Signer.Namespace() != auth.NamespaceSTS:
		return nil, errors.New("sts: Deps.Signer must be an sts KeyRing")
	case deps.Access == nil || deps.Policy == nil || deps.Sessions == nil || deps.Trail == nil:
		return nil, errors.New("sts: Deps.Access, Deps.Policy, Deps.Sessions and Deps.Trail are required")
	}
	if cfg.MaxTaskLife <= 0 {
		cfg.MaxTaskLife = DefaultMaxTaskLife
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if deps.Audit == nil {
		deps.Audit = slog.New(slog.DiscardHandler)
	}
	s := &STS{cfg: cfg, deps: deps}
	for _, v := range deps.Subjects {
		s.subjects = append(s.subjects, auth.NewCachedSubjectVerifier(v, cfg.Clock))
	}
	for _, a := range deps.Attestors {
		s.attestors = append(s.attestors, auth.NewCachedAttestor(a, cfg.Clock))
	}
	return s, nil
}

// Response is the RFC 8693 §2.2.1 response.
type Response struct {
	AccessToken          string                    `json:"access_token"`
	IssuedTokenType      string                    `json:"issued_token_type"`
	TokenType            string                    `json:"token_type"`
	ExpiresIn            int64                     `json:"expires_in"`
	Scope                string                    `json:"scope"`
	AuthorizationDetails auth.AuthorizationDetails `json:"authorization_details,omitempty"`
	SessionID            string                    `json:"session_id"`
}

// subject is what the subject token established.
type subject struct {
	principal string   // sub of the new token (before impersonation)
	kind      string   // "user", "task" (upstream task token) or "agent" (own attestation)
	scopes    []string // nil: unrestricted by the subject
	details   auth.AuthorizationDetails
	chain     []string    // actors so far, current first (task tokens)
	mayAct    *auth.Actor // may_act of the subject token: who may act for it
	expiry    time.Time
	parentSID string       // the upstream session (task tokens)
	claims    *auth.Claims // the subject task token's claims (task tokens)
	agent     *auth.Agent  // the attested agent (own attestation)
	email     string
	// emailVerified: the IdP vouches for email (only then does policy see it).
	emailVerified bool
}

// upstream reports whether the subject is an upstream agent's task token.
// Everything such a token grants is a ceiling, its absences included: what
// the parent lacks, a sub-agent cannot get. A root subject (a user token or
// an agent's own attestation) limits only what it names; policy bounds the
// first task token.
func (s subject) upstream() bool { return s.kind == "task" }

// Exchange runs one token exchange, counted by mode and result.
func (s *STS) Exchange(ctx context.Context, r *Request) (*Response, error) {
	mode := "unknown"
	resp, err := s.exchange(ctx, r, &mode)
	result := "ok"
	if err != nil {
		result = fromFault(err, ErrInvalidRequest).Code
	}
	s.deps.Observe.Exchange(mode, result)
	return resp, err
}

func (s *STS) exchange(ctx context.Context, r *Request, mode *string) (*Response, error) {
	now := s.cfg.Clock()
	for _, res := range r.Resources {
		// RFC 8707: the only resource this server issues tokens for is
		// itself; an exact match, no prefix or trailing-slash games.
		if res != s.cfg.Resource {
			return nil, oauthErr(ErrInvalidTarget, "resource/audience %q is not served here; use %s", trunc(res), s.cfg.Resource)
		}
	}
	sub, err := s.verifySubject(ctx, r)
	if err != nil {
		return nil, err
	}
	var actor *auth.Agent
	if r.ActorToken != "" && r.ActorToken == r.SubjectToken {
		// One token cannot be both the human and the agent.
		return nil, oauthErr(ErrInvalidRequest, "subject_token and actor_token are the same token; an agent exchanging its own attestation sends it as subject_token alone")
	}
	if r.ActorToken != "" {
		a, err := s.attest(ctx, r.ActorToken)
		if err != nil {
			return nil, err
		}
		actor = &a
	}

	g := grant{sub: sub, req: r, now: now}
	if actor != nil && !r.Impersonate && sub.kind == "task" && len(sub.chain) > 0 && sub.chain[0] == actor.ID {
		// The token's own agent exchanges it again: a refresh, in the
		// same task session with the same scope and budget.
		*mode = "refresh"
		return s.refresh(ctx, &g, *actor)
	}
	*mode = g.mode()
	switch {
	case actor == nil && sub.kind == "agent":
		if r.Impersonate {
			return nil, oauthErr(ErrInvalidRequest, "impersonation needs an actor_token: the agent that impersonates")
		}
		err = s.selfGrant(&g)
	case actor == nil:
		return nil, oauthErr(ErrInvalidRequest, "actor_token is required: the acting agent's attestation (only an agent's own attestation may be exchanged without one)")
	case r.Impersonate:
		err = s.impersonationGrant(&g, *actor)
	default:
		err = s.delegationGrant(&g, *actor)
	}
	if err != nil {
		s.audit(ctx, "exchange refused", &g, err)
		return nil, err
	}
	if err := s.narrow(&g); err != nil {
		s.audit(ctx, "exchange refused", &g, err)
		return nil, err
	}
	resp, err := s.issue(ctx, &g, "exchange")
	if err != nil {
		s.audit(ctx, "exchange failed", &g, err)
		return nil, err
	}
	return resp, nil
}

// grant is an exchange being decided.
type grant struct {
	req       *Request
	sub       subject
	now       time.Time
	principal string   // sub of the issued token
	clientID  string   // the acting agent
	chain     []string // act chain of the issued token, current first
	policyAs  policy.Agent
	policyFor policy.Subject
	policyIDs []string
	scopes    []string
	details   auth.AuthorizationDetails
	expiry    time.Time
	sid       string
	mayAct    *auth.Actor // may_act of the issued token (a restriction carried down)
}

// entry is the audit entry of an exchange decision, with the policies
// that decided.
func (g *grant) entry() sessions.Entry {
	return sessions.Entry{
		Event: "exchange", Principal: g.principal, Actors: g.chain, ClientID: g.clientID,
		Session: g.sid, ParentSession: g.sub.parentSID, PolicyIDs: g.policyIDs, Decision: sessions.DecisionAllow,
		Detail: map[string]string{"scope": strings.Join(g.scopes, " "), "mode": g.mode()},
	}
}

// audit records a refused exchange in the audit trail (best effort) and
// the log; an allowed one is logged here and recorded with its session
// (issue), so no task token exists that the trail does not know about.
func (s *STS) audit(ctx context.Context, msg string, g *grant, err error) error {
	e := g.entry()
	attrs := []any{"principal", g.principal, "client_id", g.clientID, "actors", g.chain, "scope", g.scopes,
		"policy_ids", g.policyIDs, "sid", g.sid, "parent_sid", g.sub.parentSID, "mode", g.mode()}
	if err != nil {
		e.Decision = sessions.DecisionDeny
		var oe *Error
		if errors.As(err, &oe) {
			e.Code, e.Reason = oe.Code, trunc(oe.Description)
		}
		s.deps.Audit.WarnContext(ctx, msg, append(attrs, "decision", "deny", "reason", err.Error())...)
		if _, aerr := s.deps.Trail.Append(context.WithoutCancel(ctx), e); aerr != nil {
			s.deps.Audit.ErrorContext(ctx, "audit append failed", "err", aerr)
		}
		return nil
	}
	s.deps.Audit.InfoContext(ctx, msg, append(attrs, "decision", "allow")...)
	return nil
}

func (g *grant) mode() string {
	switch {
	case g.req.Impersonate:
		return "impersonation"
	case g.sub.kind == "agent":
		return "self"
	}
	return "delegation"
}

func newJTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
