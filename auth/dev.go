package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/internal/fault"
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

// DevSignerConfig configures the sandbox's dev IdP and dev agent signer.
// Never wire it in production mode.
type DevSignerConfig struct {
	Issuer string   // tollgate's public URL; the aud of every dev token
	IDP    *KeyRing // namespace dev-idp
	Agent  *KeyRing // namespace dev-agent
	Clock  func() time.Time
	Rand   io.Reader // jti source; default crypto/rand
}

// DevSigner mints sandbox user and agent tokens. They are verified by the
// same code as real ones: NewDevSubjectVerifier and NewDevAttestor.
type DevSigner struct {
	cfg DevSignerConfig
}

// NewDevSigner validates cfg.
func NewDevSigner(cfg DevSignerConfig) (*DevSigner, error) {
	if err := checkURL("DevSignerConfig.Issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.IDP == nil || cfg.IDP.Namespace() != NamespaceDevIDP {
		return nil, fmt.Errorf("auth: DevSignerConfig.IDP must be a %s KeyRing", NamespaceDevIDP)
	}
	if cfg.Agent == nil || cfg.Agent.Namespace() != NamespaceDevAgent {
		return nil, fmt.Errorf("auth: DevSignerConfig.Agent must be a %s KeyRing", NamespaceDevAgent)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &DevSigner{cfg: cfg}, nil
}

// UserToken signs a user token for email: sub is the lowercased address,
// so the principal is "user:<email>".
func (s *DevSigner) UserToken(email string, scopes []string, ttl time.Duration) (string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email || !printableASCII(email, maxSubjectBytes) {
		return "", fault.Newf(fault.InvalidArgument, "dev login: %q is not a plain e-mail address like alice@example.com", email)
	}
	scope, err := JoinScopes(scopes)
	if err != nil {
		return "", fault.Wrap(err, fault.InvalidArgument, "dev login: scopes must be RFC 6749 scope tokens without spaces or quotes")
	}
	if ttl <= 0 {
		return "", fault.New(fault.InvalidArgument, "dev login: the token lifetime must be positive")
	}
	jti, err := s.jti()
	if err != nil {
		return "", err
	}
	now := s.cfg.Clock()
	sub := strings.ToLower(email)
	return s.cfg.IDP.Sign(SubjectClaims{
		Issuer:        DevIDPIssuer(s.cfg.Issuer),
		Subject:       sub,
		Audience:      jwt.Audience{s.cfg.Issuer},
		Expiry:        jwt.NewNumericDate(now.Add(ttl)),
		NotBefore:     jwt.NewNumericDate(now),
		IssuedAt:      jwt.NewNumericDate(now),
		ID:            jti,
		Email:         sub,
		EmailVerified: true,
		Scope:         scope,
	}, TypJWT)
}

// AgentToken signs a workload token for the sandbox agent name, whose id is
// spiffe://tollgate.sandbox/agent/<name>.
func (s *DevSigner) AgentToken(name string, ttl time.Duration) (string, error) {
	if !devAgentName(name) {
		return "", fault.Newf(fault.InvalidArgument, "dev agent-token: agent name %q must match ^[a-z0-9][a-z0-9-]{0,62}$", name)
	}
	if ttl <= 0 {
		return "", fault.New(fault.InvalidArgument, "dev agent-token: the token lifetime must be positive")
	}
	jti, err := s.jti()
	if err != nil {
		return "", err
	}
	now := s.cfg.Clock()
	return s.cfg.Agent.Sign(jwt.Claims{
		Issuer:    DevAttestIssuer(s.cfg.Issuer),
		Subject:   DevAgentID(name),
		Audience:  jwt.Audience{s.cfg.Issuer},
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        jti,
	}, TypJWT)
}

func (s *DevSigner) jti() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fault.Wrap(err, fault.Internal, "dev signer: no randomness; nothing was changed.")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
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
