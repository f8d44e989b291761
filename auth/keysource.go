package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// KeySource finds the public key a token's kid names. It never fetches a
// key named by the token itself (no jku/x5u): keys come only from where the
// operator configured them. An unknown or malformed kid is reported as a
// *Rejection (ReasonUnknownKID, ReasonBadKID); any other error means the
// source could not be read, and the verifier fails closed.
type KeySource interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

var (
	_ KeySource = (*RedisKeys)(nil)
	_ KeySource = (*StaticKeys)(nil)
)

// RedisKeysConfig configures the verifier's view of one namespace's keys.
type RedisKeysConfig struct {
	Namespace Namespace
	Redis     redis.UniversalClient
	// MinRefreshInterval is the least time between two reads of the
	// namespace from Redis, across all callers. Default 1s (SPEC §3).
	MinRefreshInterval time.Duration
	Clock              func() time.Time // default time.Now
}

func (c *RedisKeysConfig) validate() error {
	if _, ok := c.Namespace.tokenType(); !ok {
		return fmt.Errorf("auth: RedisKeysConfig.Namespace %q: use sts, dev-idp or dev-agent", c.Namespace)
	}
	if c.Redis == nil {
		return errors.New("auth: RedisKeysConfig.Redis is required")
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = time.Second
	}
	if c.MinRefreshInterval < 0 {
		return errors.New("auth: RedisKeysConfig.MinRefreshInterval must be positive")
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

// RedisKeys is the KeySource for keys tollgate's replicas publish (KeyRing).
// It caches verified keys until their published expiry. A kid it does not
// know triggers a read of the whole namespace — one Redis round trip — at
// most once per MinRefreshInterval across all callers, so a flood of random
// kids costs Redis about one read a second, and any read also picks up every
// newly published key.
type RedisKeys struct {
	cfg RedisKeysConfig

	mu    sync.RWMutex // guards cache
	cache map[string]publishedKey

	refreshMu   sync.Mutex // serializes refreshes; guards lastRefresh
	lastRefresh time.Time
	refreshed   bool
}

// NewRedisKeys returns an empty cache; the first Key call reads Redis.
func NewRedisKeys(cfg RedisKeysConfig) (*RedisKeys, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &RedisKeys{cfg: cfg, cache: map[string]publishedKey{}}, nil
}

// Namespace is the namespace whose keys this source serves.
func (r *RedisKeys) Namespace() Namespace { return r.cfg.Namespace }

// Key returns the live key with this kid.
func (r *RedisKeys) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	// Our kids are thumbprints; anything else (a path, a SQL fragment, a
	// glob) is refused before it comes near Redis.
	if !isThumbprintKID(kid) {
		return nil, rejection(ReasonBadKID, "kid %.64q is not a key thumbprint", kid)
	}
	if k, ok := r.cached(kid, r.cfg.Clock()); ok {
		return k, nil
	}

	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	now := r.cfg.Clock()
	// Another caller may have refreshed while this one waited.
	if k, ok := r.cached(kid, now); ok {
		return k, nil
	}
	// SPEC §3: refresh on an unknown kid at most once per interval.
	if r.refreshed && now.Sub(r.lastRefresh) < r.cfg.MinRefreshInterval {
		return nil, rejection(ReasonUnknownKID, "no live %s key %s (refresh rate-limited)", r.cfg.Namespace, kid)
	}
	r.refreshed, r.lastRefresh = true, now
	keys, err := loadKeys(ctx, r.cfg.Redis, r.cfg.Namespace, now)
	if err != nil {
		return nil, &Rejection{Reason: ReasonKeysUnavailable, Err: err}
	}
	fresh := make(map[string]publishedKey, len(keys))
	for _, pk := range keys {
		fresh[pk.jwk.KeyID] = pk
	}
	r.mu.Lock()
	r.cache = fresh
	r.mu.Unlock()
	if k, ok := r.cached(kid, now); ok {
		return k, nil
	}
	return nil, rejection(ReasonUnknownKID, "no live %s key %s", r.cfg.Namespace, kid)
}

// cached returns a copy of a cached key whose publication has not expired:
// the key of a replica that died stops verifying when its score passes,
// even if it is still in this cache.
func (r *RedisKeys) cached(kid string, now time.Time) (*jose.JSONWebKey, bool) {
	r.mu.RLock()
	pk, ok := r.cache[kid]
	r.mu.RUnlock()
	if !ok || !now.Before(pk.expires) {
		return nil, false
	}
	k := pk.jwk
	return &k, true
}
