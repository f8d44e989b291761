package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// maxAgentIDBytes bounds an agent id taken from a workload JWT's sub.
const maxAgentIDBytes = 512

// JWTAttestorConfig configures attestation by workload JWT: a SPIFFE
// JWT-SVID, a Kubernetes projected service-account token or a CI OIDC
// token, verified against a configured trust bundle.
type JWTAttestorConfig struct {
	Issuer   string    // the workload issuer, exactly
	Audience string    // the audience the workload asked its token for
	Keys     KeySource // the trust bundle, normally *StaticKeys
	// Algorithms the issuer signs with, e.g. RS256 (Kubernetes, GitHub),
	// ES256 or EdDSA; default EdDSA. none and HS* are refused.
	Algorithms []jose.SignatureAlgorithm
	// Typ defaults to "JWT" (SPIFFE also allows "JOSE"). Kubernetes tokens
	// have no typ: set AllowMissingTyp. at+jwt is refused: an access token
	// is never workload evidence.
	Typ             string
	AllowMissingTyp bool
	Leeway          time.Duration
	MaxLifetime     time.Duration // default 24h
	Clock           func() time.Time
}

// JWTAttestor attests agents by workload JWT; the agent id is the token's sub.
type JWTAttestor struct {
	core *Verifier
	kind string
}

// NewJWTAttestor validates cfg.
func NewJWTAttestor(cfg JWTAttestorConfig) (*JWTAttestor, error) {
	return newJWTAttestor(cfg, KindJWT)
}

func newJWTAttestor(cfg JWTAttestorConfig, kind string) (*JWTAttestor, error) {
	if cfg.Keys == nil {
		return nil, errors.New("auth: JWTAttestorConfig.Keys is required")
	}
	if cfg.Typ == "" {
		cfg.Typ = TypJWT
	}
	if sameTyp(cfg.Typ, TypAccessToken) {
		return nil, errors.New("auth: JWTAttestorConfig.Typ must not be at+jwt: access tokens are not workload evidence")
	}
	core, err := NewVerifier(VerifyConfig{
		Issuer:          cfg.Issuer,
		Audience:        cfg.Audience,
		Typ:             cfg.Typ,
		AllowMissingTyp: cfg.AllowMissingTyp,
		Algorithms:      cfg.Algorithms,
		Leeway:          cfg.Leeway,
		MaxLifetime:     cfg.MaxLifetime,
		Clock:           cfg.Clock,
	}, cfg.Keys)
	if err != nil {
		return nil, err
	}
	core.what = "agent attestation token"
	core.remedy = "fetch a fresh workload token from your issuer and retry"
	return &JWTAttestor{core: core, kind: kind}, nil
}

// Attest verifies ev.Token and returns the agent it names.
func (a *JWTAttestor) Attest(ctx context.Context, ev Evidence) (Agent, error) {
	if ev.Token == "" {
		return Agent{}, fault.Wrap(rejection(ReasonMissingEvidence, "no token"), fault.Unauthenticated,
			"no agent attestation token was presented; send your workload token as the actor_token.")
	}
	var c jwt.Claims
	if r := a.core.verify(ctx, ev.Token, &c); r != nil {
		return Agent{}, a.core.refuse(r)
	}
	// The agent id shares one namespace with the other attestors' ids and
	// with principals: a workload issuer must not be able to mint an id
	// that reads as a unix peer or a user.
	if !printableASCII(c.Subject, maxAgentIDBytes) || strings.HasPrefix(c.Subject, "unix:") || strings.HasPrefix(c.Subject, "user:") {
		return Agent{}, a.core.refuse(rejection(ReasonBadSubject, "sub %.64q cannot be an agent id", c.Subject))
	}
	return Agent{
		ID:     c.Subject,
		Kind:   a.kind,
		Expiry: c.Expiry.Time(),
		Detail: map[string]string{"iss": c.Issuer},
	}, nil
}
