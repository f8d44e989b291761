package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DevTrustDomain is the SPIFFE trust domain of sandbox agents.
const DevTrustDomain = "tollgate.sandbox"

// DevIDPIssuer is the iss of sandbox user tokens for a tollgate issuer.
func DevIDPIssuer(issuer string) string { return issuer + "/dev/idp" }

// DevAttestIssuer is the iss of sandbox agent tokens for a tollgate issuer.
func DevAttestIssuer(issuer string) string { return issuer + "/dev/attest" }

// DevAgentID is the agent id of a sandbox agent name.
func DevAgentID(name string) string { return "spiffe://" + DevTrustDomain + "/agent/" + name }

// devAgentName reports whether name matches ^[a-z0-9][a-z0-9-]{0,62}$.
func devAgentName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// DevVerifyConfig configures the verifiers of sandbox dev tokens.
type DevVerifyConfig struct {
	Issuer string     // tollgate's public URL
	Keys   *RedisKeys // dev-idp keys for users, dev-agent keys for agents
	Leeway time.Duration
	Clock  func() time.Time
}

// NewDevAttestor is the dev attestor: a JWTAttestor over the dev-agent keys
// (the sandbox trust bundle), so dev agents go through the jwt code path
// (SPEC §3). Its agents have Kind "dev".
func NewDevAttestor(cfg DevVerifyConfig) (*JWTAttestor, error) {
	if cfg.Keys == nil || cfg.Keys.Namespace() != NamespaceDevAgent {
		return nil, fmt.Errorf("auth: NewDevAttestor needs %s RedisKeys", NamespaceDevAgent)
	}
	if err := checkURL("DevVerifyConfig.Issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	return newJWTAttestor(JWTAttestorConfig{
		Issuer:     DevAttestIssuer(cfg.Issuer),
		Audience:   cfg.Issuer,
		Keys:       cfg.Keys,
		Algorithms: []jose.SignatureAlgorithm{jose.EdDSA},
		Typ:        TypJWT,
		Leeway:     cfg.Leeway,
		Clock:      cfg.Clock,
	}, KindDev)
}

// NewDevSubjectVerifier verifies dev IdP user tokens through the same
// SubjectVerifier as a real IdP's.
func NewDevSubjectVerifier(cfg DevVerifyConfig) (*SubjectVerifier, error) {
	if cfg.Keys == nil || cfg.Keys.Namespace() != NamespaceDevIDP {
		return nil, errors.New("auth: NewDevSubjectVerifier needs " + string(NamespaceDevIDP) + " RedisKeys")
	}
	if err := checkURL("DevVerifyConfig.Issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	return NewSubjectVerifier(SubjectVerifierConfig{
		Issuer:     DevIDPIssuer(cfg.Issuer),
		Audience:   cfg.Issuer,
		Keys:       cfg.Keys,
		Typ:        TypJWT,
		Algorithms: []jose.SignatureAlgorithm{jose.EdDSA},
		Leeway:     cfg.Leeway,
		Clock:      cfg.Clock,
	})
}
