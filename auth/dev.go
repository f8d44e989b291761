//go:build !nosandbox

package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

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
