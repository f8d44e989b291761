package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AccessVerifierConfig configures the verifier of tollgate's own access
// (task) tokens, the bearer token of every tool call.
type AccessVerifierConfig struct {
	Issuer   string    // tollgate's public URL, exactly as it signs iss
	Resource string    // the canonical MCP resource URL, the only accepted aud
	Keys     KeySource // the sts namespace's keys, normally *RedisKeys
	Leeway   time.Duration
	// MaxLifetime is the longest exp − iat accepted; default 1h. Keep it at
	// or under the KeyRing's MaxTokenLifetime.
	MaxLifetime time.Duration
	Clock       func() time.Time
}

// AccessVerifier verifies tollgate access tokens: typ at+jwt (RFC 9068),
// EdDSA, signed by a live sts key.
type AccessVerifier struct {
	core *Verifier
}

// NewAccessVerifier validates cfg.
func NewAccessVerifier(cfg AccessVerifierConfig) (*AccessVerifier, error) {
	if err := checkURL("AccessVerifierConfig.Issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if err := checkURL("AccessVerifierConfig.Resource", cfg.Resource); err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, errors.New("auth: AccessVerifierConfig.Keys is required")
	}
	if rk, ok := cfg.Keys.(*RedisKeys); ok && rk.Namespace() != NamespaceSTS {
		return nil, fmt.Errorf("auth: AccessVerifierConfig.Keys serves %s keys; access tokens are signed by %s keys", rk.Namespace(), NamespaceSTS)
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = time.Hour
	}
	core, err := NewVerifier(VerifyConfig{
		Issuer:      cfg.Issuer,
		Audience:    cfg.Resource,
		Typ:         TypAccessToken,
		Algorithms:  []jose.SignatureAlgorithm{jose.EdDSA},
		Leeway:      cfg.Leeway,
		MaxLifetime: cfg.MaxLifetime,
		Clock:       cfg.Clock,
	}, cfg.Keys)
	if err != nil {
		return nil, err
	}
	core.what = "access token"
	core.remedy = "exchange for a new task token at " + cfg.Issuer + "/oauth/token and retry"
	return &AccessVerifier{core: core}, nil
}

// Verify returns the claims of a valid access token. It does not look at
// the task session: callers re-check session status and jti revocation in
// Redis on every call (SPEC §5).
func (v *AccessVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	var c Claims
	if r := v.core.verify(ctx, token, &c); r != nil {
		return nil, v.core.refuse(r)
	}
	if r := c.validate(); r != nil {
		return nil, v.core.refuse(r)
	}
	return &c, nil
}
