package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a trust bundle file.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus a trust bundle may hold.
const minRSABits = 2048

// StaticKeys is a KeySource over a fixed JWKS document: a configured trust
// bundle (SPIFFE bundle, Kubernetes service-account issuer JWKS, CI OIDC
// JWKS) or an external IdP's keys. Only public asymmetric signing keys are
// kept.
type StaticKeys struct {
	keys map[string]jose.JSONWebKey
}

// LoadStaticKeys reads a JWKS document from a file.
func LoadStaticKeys(path string) (*StaticKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: open trust bundle: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: read trust bundle %s: %w", path, err)
	}
	s, err := NewStaticKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}

// NewStaticKeys parses a JWKS document ({"keys":[…]}). Keys whose use is
// "enc" or SPIFFE's "x509-svid" are skipped. It refuses the document when a
// signing key is symmetric (RFC 8725 §3.1: an HMAC key in a trust bundle
// invites alg confusion), private, an RSA key under 2048 bits, without a
// kid, or when two keys share a kid, and when no signing key remains.
func NewStaticKeys(jwks []byte) (*StaticKeys, error) {
	if len(jwks) > maxJWKSBytes {
		return nil, fmt.Errorf("auth: trust bundle larger than %d bytes", maxJWKSBytes)
	}
	if err := scanJSON(jwks, 8); err != nil {
		return nil, fmt.Errorf("auth: trust bundle is not clean JSON: %w", err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		return nil, fmt.Errorf("auth: trust bundle is not a JWKS document: %w", err)
	}
	s := &StaticKeys{keys: map[string]jose.JSONWebKey{}}
	for i, raw := range doc.Keys {
		var peek struct {
			Use string `json:"use"`
		}
		if err := json.Unmarshal(raw, &peek); err != nil {
			return nil, fmt.Errorf("auth: trust bundle key %d: %w", i, err)
		}
		if peek.Use == "enc" || peek.Use == "x509-svid" {
			continue
		}
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("auth: trust bundle key %d: %w", i, err)
		}
		if err := checkTrustedKey(k); err != nil {
			return nil, fmt.Errorf("auth: trust bundle key %d (kid %q): %w", i, k.KeyID, err)
		}
		if _, dup := s.keys[k.KeyID]; dup {
			return nil, fmt.Errorf("auth: trust bundle has two keys with kid %q", k.KeyID)
		}
		s.keys[k.KeyID] = k
	}
	if len(s.keys) == 0 {
		return nil, errors.New("auth: trust bundle holds no signing keys")
	}
	return s, nil
}

func checkTrustedKey(k jose.JSONWebKey) error {
	if k.KeyID == "" {
		return errors.New("no kid")
	}
	if !k.IsPublic() {
		return errors.New("not a public key (symmetric or private keys are never trusted)")
	}
	switch pub := k.Key.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits, at least %d required", pub.N.BitLen(), minRSABits)
		}
	default:
		return fmt.Errorf("unsupported key type %T", k.Key)
	}
	if k.Algorithm != "" && !asymmetricAlg(jose.SignatureAlgorithm(k.Algorithm)) {
		return fmt.Errorf("alg %q is not an asymmetric signature algorithm", k.Algorithm)
	}
	return nil
}

// Key returns the key with this kid.
func (s *StaticKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	k, ok := s.keys[kid]
	if !ok {
		return nil, rejection(ReasonUnknownKID, "kid %.64q is not in the trust bundle", kid)
	}
	return &k, nil
}

// KIDs lists the kids in the bundle, sorted.
func (s *StaticKeys) KIDs() []string {
	out := make([]string, 0, len(s.keys))
	for kid := range s.keys {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}
