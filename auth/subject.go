package auth

import (
	"context"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxSubjectBytes is OIDC Core §2's limit on sub.
const maxSubjectBytes = 255

// SubjectVerifierConfig configures the verifier of user (subject) tokens of
// one IdP: an OIDC ID token or JWT access token, or the sandbox dev IdP's.
type SubjectVerifierConfig struct {
	Issuer   string    // the IdP's issuer, exactly
	Audience string    // the audience tollgate is registered as at the IdP
	Keys     KeySource // the IdP's keys: StaticKeys, or RedisKeys for dev-idp
	// Typ is the required typ header; default "JWT". AllowMissingTyp
	// accepts IdPs that send none. A tollgate access token (at+jwt) never
	// passes unless Typ is at+jwt.
	Typ             string
	AllowMissingTyp bool
	// Algorithms defaults to EdDSA only; most OIDC providers need RS256.
	Algorithms  []jose.SignatureAlgorithm
	Leeway      time.Duration
	MaxLifetime time.Duration // default 24h
	Clock       func() time.Time
}

// SubjectVerifier verifies user tokens and yields the principal's claims.
type SubjectVerifier struct {
	core *Verifier
}

// NewSubjectVerifier validates cfg.
func NewSubjectVerifier(cfg SubjectVerifierConfig) (*SubjectVerifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("auth: SubjectVerifierConfig.Keys is required")
	}
	if cfg.Typ == "" {
		cfg.Typ = TypJWT
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
	core.what = "subject token"
	core.remedy = "sign in again at your identity provider and retry the exchange"
	return &SubjectVerifier{core: core}, nil
}

// Verify returns the claims of a valid user token. The principal is
// claims.Principal().
func (v *SubjectVerifier) Verify(ctx context.Context, token string) (*SubjectClaims, error) {
	var c SubjectClaims
	if r := v.core.verify(ctx, token, &c); r != nil {
		return nil, v.core.refuse(r)
	}
	// The principal ends up in Redis keys and the audit trail: keep it to
	// what OIDC allows (at most 255 ASCII characters), printable.
	if !printableASCII(c.Subject, maxSubjectBytes) {
		return nil, v.core.refuse(rejection(ReasonBadSubject, "sub is not printable ASCII of at most %d bytes", maxSubjectBytes))
	}
	if err := checkScope(c.Scope); err != nil {
		return nil, v.core.refuse(err)
	}
	if err := c.MayAct.validate(MaxDelegationDepth); err != nil {
		return nil, v.core.refuse(err)
	}
	return &c, nil
}
