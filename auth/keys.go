package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Namespace separates the signers that share the KeyRing type, so that a
// key of one can never verify a token of another.
type Namespace string

// The three signers of tollgate.
const (
	NamespaceSTS      Namespace = "sts"       // tollgate access (task) tokens
	NamespaceDevIDP   Namespace = "dev-idp"   // sandbox user (subject) tokens
	NamespaceDevAgent Namespace = "dev-agent" // sandbox agent attestation tokens
)

// JWT "typ" header values tollgate signs (RFC 9068 §2.1 for access tokens).
const (
	TypAccessToken = "at+jwt"
	TypJWT         = "JWT"
)

// tokenType is the only typ a namespace signs.
func (ns Namespace) tokenType() (string, bool) {
	switch ns {
	case NamespaceSTS:
		return TypAccessToken, true
	case NamespaceDevIDP, NamespaceDevAgent:
		return TypJWT, true
	}
	return "", false
}

// KeyRingConfig configures one replica's signer for one namespace.
type KeyRingConfig struct {
	Namespace Namespace
	Redis     redis.UniversalClient
	// KeyTTL is how long a published key stays live without being
	// re-published. It must exceed MaxTokenLifetime plus two refreshes, so a
	// token never outlives the key that verifies it. Default 2h.
	KeyTTL time.Duration
	// RefreshEvery is how often Run re-publishes the key. Default 1m.
	RefreshEvery time.Duration
	// MaxTokenLifetime caps exp − now of anything Sign signs. Default 1h.
	MaxTokenLifetime time.Duration
	Clock            func() time.Time // default time.Now
	Rand             io.Reader        // key generation; default crypto/rand
	OnError          func(error)      // Run's publish failures; default ignore
}

func (c *KeyRingConfig) validate() error {
	if _, ok := c.Namespace.tokenType(); !ok {
		return fmt.Errorf("auth: KeyRingConfig.Namespace %q: use sts, dev-idp or dev-agent", c.Namespace)
	}
	if c.Redis == nil {
		return errors.New("auth: KeyRingConfig.Redis is required")
	}
	if c.KeyTTL == 0 {
		c.KeyTTL = 2 * time.Hour
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = time.Minute
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = time.Hour
	}
	if c.KeyTTL < 0 || c.RefreshEvery < 0 || c.MaxTokenLifetime < 0 {
		return errors.New("auth: KeyRingConfig durations must be positive")
	}
	if c.KeyTTL < c.MaxTokenLifetime+2*c.RefreshEvery {
		return fmt.Errorf("auth: KeyRingConfig.KeyTTL %s must be at least MaxTokenLifetime %s plus two RefreshEvery %s, or tokens would outlive their key",
			c.KeyTTL, c.MaxTokenLifetime, c.RefreshEvery)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}
	return nil
}

// KeyRing is one replica's Ed25519 signing key for one namespace. The
// private key is generated in memory and never leaves the process; the
// public key is published to Redis (see keystore.go) for every replica's
// verifiers and for the JWKS endpoint.
type KeyRing struct {
	cfg    KeyRingConfig
	priv   ed25519.PrivateKey
	pub    jose.JSONWebKey
	member string // the published JWK JSON, byte-identical on every publish
	typ    string
	signer jose.Signer
	script *redis.Script

	mu             sync.Mutex
	publishedUntil time.Time
}

// NewKeyRing generates a fresh key. It does no I/O: call Publish (or Run)
// before Sign, which refuses to sign with an unpublished key.
func NewKeyRing(cfg KeyRingConfig) (*KeyRing, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pubKey, priv, err := ed25519.GenerateKey(cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("auth: generate %s key: %w", cfg.Namespace, err)
	}
	pub := jose.JSONWebKey{Key: pubKey, Algorithm: string(jose.EdDSA), Use: "sig"}
	if pub.KeyID, err = thumbprintKID(pub); err != nil {
		return nil, fmt.Errorf("auth: thumbprint %s key: %w", cfg.Namespace, err)
	}
	member, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: encode %s key: %w", cfg.Namespace, err)
	}
	typ, _ := cfg.Namespace.tokenType()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, fmt.Errorf("auth: %s signer: %w", cfg.Namespace, err)
	}
	return &KeyRing{
		cfg: cfg, priv: priv, pub: pub, member: string(member), typ: typ,
		signer: signer, script: redis.NewScript(publishScript),
	}, nil
}

// Namespace is the namespace the ring signs for.
func (k *KeyRing) Namespace() Namespace { return k.cfg.Namespace }

// KID is the key id, the RFC 7638 thumbprint of the public key.
func (k *KeyRing) KID() string { return k.pub.KeyID }

// PublicKey is the public JWK.
func (k *KeyRing) PublicKey() jose.JSONWebKey { return k.pub }

// String keeps the private key out of %v and %+v.
func (k *KeyRing) String() string {
	return "auth.KeyRing{ns=" + string(k.cfg.Namespace) + " kid=" + k.pub.KeyID + "}"
}

// GoString keeps the private key out of %#v.
func (k *KeyRing) GoString() string { return k.String() }

// Publish writes the public key to Redis with expiry now + KeyTTL.
func (k *KeyRing) Publish(ctx context.Context) error {
	now := k.cfg.Clock()
	until := now.Add(k.cfg.KeyTTL)
	err := k.script.Run(ctx, k.cfg.Redis, []string{keysKey(k.cfg.Namespace)},
		strconv.FormatInt(until.UnixMilli(), 10), k.member, strconv.FormatInt(now.UnixMilli(), 10)).Err()
	if err != nil {
		return fmt.Errorf("auth: publish %s key %s: %w", k.cfg.Namespace, k.pub.KeyID, err)
	}
	k.mu.Lock()
	if until.After(k.publishedUntil) {
		k.publishedUntil = until
	}
	k.mu.Unlock()
	return nil
}

// Run publishes the key now and every RefreshEvery until ctx ends, so the
// key of a live replica never expires. After a failure it retries within
// five seconds; failures go to OnError. It returns ctx.Err().
func (k *KeyRing) Run(ctx context.Context) error {
	for {
		wait := k.cfg.RefreshEvery
		if err := k.Publish(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			k.cfg.OnError(err)
			wait = min(wait, 5*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sign serializes v as the JWT claims set and signs it (alg EdDSA, headers
// kid and typ). typ must be the namespace's token type. v must carry an exp
// no later than now + MaxTokenLifetime and no later than the key is known to
// stay published, so that no token outlives the key that verifies it; when
// Redis has been unreachable for too long, Sign fails closed.
func (k *KeyRing) Sign(v any, typ string) (string, error) {
	if typ != k.typ {
		return "", fault.Wrap(rejection(ReasonWrongTokenType, "%s signs typ %q, not %q", k.cfg.Namespace, k.typ, typ),
			fault.Internal, "tollgate could not sign the token; nothing was charged or changed.")
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return "", fault.Wrap(err, fault.Internal, "tollgate could not encode the token; nothing was charged or changed.")
	}
	// Read exp exactly as the verifier will (exact member name, strict
	// NumericDate), not as encoding/json would match it.
	var m map[string]json.RawMessage
	var exp time.Time
	present, bad := false, json.Unmarshal(payload, &m) != nil
	if !bad {
		var r *Rejection
		exp, present, r = numericDate(m, "exp")
		bad = r != nil
	}
	if bad || !present {
		return "", fault.Wrap(rejection(ReasonNoExpToSign, "claims of a %s token have no valid exp", k.cfg.Namespace),
			fault.Internal, "tollgate could not sign the token; nothing was charged or changed.")
	}
	now := k.cfg.Clock()
	if exp.After(now.Add(k.cfg.MaxTokenLifetime)) {
		return "", fault.Wrap(rejection(ReasonTooLongLived, "exp %s is beyond the %s maximum", exp.UTC().Format(time.RFC3339), k.cfg.MaxTokenLifetime),
			fault.InvalidArgument, fmt.Sprintf("token lifetime too long; ask for at most %s.", k.cfg.MaxTokenLifetime))
	}
	k.mu.Lock()
	until := k.publishedUntil
	k.mu.Unlock()
	if exp.After(until) {
		return "", fault.Wrap(rejection(ReasonKeyNotPublished, "%s key %s published until %s, token exp %s", k.cfg.Namespace, k.pub.KeyID, until.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339)),
			fault.Unavailable, "tollgate cannot publish its signing key (is Redis reachable?); nothing was charged or changed. Retry in a few seconds.")
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fault.Wrap(err, fault.Internal, "tollgate could not sign the token; nothing was charged or changed.")
	}
	return jws.CompactSerialize()
}

// JWKS returns the live public keys of the ring's namespace, as served at
// /.well-known/jwks.json, sorted by kid. A Redis error is returned, never an
// empty set that would look like "no keys".
func (k *KeyRing) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := loadKeys(ctx, k.cfg.Redis, k.cfg.Namespace, k.cfg.Clock())
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, pk := range keys {
		set.Keys = append(set.Keys, pk.jwk)
	}
	slices.SortFunc(set.Keys, func(a, b jose.JSONWebKey) int { return strings.Compare(a.KeyID, b.KeyID) })
	return set, nil
}
