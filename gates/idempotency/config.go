package idempotency

import (
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of Config.
const (
	DefaultPrefix        = "tg"
	DefaultTTL           = 24 * time.Hour
	DefaultInProgressTTL = 10 * time.Minute
	DefaultTimeout       = 2 * time.Second
	// MinTTL is the shortest TTL accepted: SPEC §9.2 keeps keys ≥ 24h.
	MinTTL = 24 * time.Hour
	// MinSecret is the shortest Config.Secret accepted, in bytes.
	MinSecret = 32
)

// Config configures a Store. Every field but Secret has a default.
type Config struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only; it
	// must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// TTL is how long a finished call's result is kept and replayed (24h,
	// the least accepted).
	TTL time.Duration
	// InProgressTTL is how long a running call holds its key (10m): the lock
	// of a call that crashed expires after it and the key can be retaken.
	// Make it longer than the slowest provider call; at most TTL.
	InProgressTTL time.Duration
	// Secret keys the HMAC of UpstreamKey: at least 32 random bytes, the
	// same on every replica of a deployment, and kept for as long as
	// providers remember idempotency keys (Stripe: 24h). Required.
	Secret []byte
	// Now is the clock (time.Now). Lock expiry is judged by this clock,
	// passed to the Lua scripts, never by Redis's own clock.
	Now func() time.Time
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	// For it to bound socket waits as well, build the client with
	// ContextTimeoutEnabled.
	Timeout time.Duration
}

// Validate reports the first problem with c, naming the field and the fix.
func (c Config) Validate() error {
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		return fmt.Errorf("idempotency: Config.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", c.Prefix)
	}
	if c.TTL != 0 && c.TTL < MinTTL {
		return fmt.Errorf("idempotency: Config.TTL %v is below 24h: keys are kept at least 24h (SPEC §9.2); use 0 for the default", c.TTL)
	}
	if c.InProgressTTL < 0 {
		return errors.New("idempotency: Config.InProgressTTL is negative: use 0 for the 10m default or a positive duration")
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if c.InProgressTTL > ttl {
		return fmt.Errorf("idempotency: Config.InProgressTTL %v exceeds TTL %v: a lock cannot outlive the record", c.InProgressTTL, ttl)
	}
	if len(c.Secret) < MinSecret {
		return fmt.Errorf("idempotency: Config.Secret has %d bytes: give at least %d random bytes, the same on every replica", len(c.Secret), MinSecret)
	}
	if c.Timeout < 0 {
		return errors.New("idempotency: Config.Timeout is negative: use 0 for the 2s default or a positive duration")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.InProgressTTL == 0 {
		c.InProgressTTL = DefaultInProgressTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Secret = append([]byte(nil), c.Secret...)
	return c
}

// Store records idempotent calls in Redis. It is safe for concurrent use;
// every replica may hold its own Store on the same Redis.
type Store struct {
	rdb     redis.UniversalClient
	cfg     Config
	keys    keyspace
	scripts scripts
}

// New returns a Store on rdb (a *redis.Client, *redis.ClusterClient or
// failover client). cfg is validated; zero fields take their defaults.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("idempotency: New needs a Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Store{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}, scripts: newScripts()}, nil
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(isAlnum(c) || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
