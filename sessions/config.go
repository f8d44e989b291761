package sessions

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of Config.
const (
	DefaultPrefix    = "tg"
	DefaultRetention = 24 * time.Hour
	DefaultTimeout   = 2 * time.Second
	DefaultSkew      = time.Minute
)

// Config configures a Store. The zero value is valid and safe: every field
// has a default.
type Config struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only; it
	// must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// Retention is how long a session's record is kept after it expires, so
	// that `session show` and the audit trail still find it (24h).
	Retention time.Duration
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	// For it to bound socket waits as well, build the client with
	// ContextTimeoutEnabled.
	Timeout time.Duration
	// Skew is added to a deny-listed jti's lifetime so that a replica whose
	// clock runs behind, and still accepts the token, also still denies it (1m).
	Skew time.Duration
	// Now is the clock (time.Now). Expiry is judged by this clock, passed to
	// the Lua scripts, never by Redis's own clock.
	Now func() time.Time
	// NewID returns a fresh session id (128 random bits, lowercase base32).
	// Ids must match [A-Za-z0-9._~-]{1,128}.
	NewID func() string
}

// Validate reports the first problem with c, naming the field and the fix.
func (c Config) Validate() error {
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		return fmt.Errorf("sessions: Config.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", c.Prefix)
	}
	if c.Retention < 0 {
		return errors.New("sessions: Config.Retention is negative: use 0 for the 24h default or a positive duration")
	}
	if c.Timeout < 0 {
		return errors.New("sessions: Config.Timeout is negative: use 0 for the 2s default or a positive duration")
	}
	if c.Skew < 0 {
		return errors.New("sessions: Config.Skew is negative: use 0 for the 1m default or a positive duration")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = RandomID
	}
	return c
}

// RandomID returns 128 bits from crypto/rand as 26 lowercase base32
// characters. It is the default Config.NewID.
func RandomID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program rather than hand out a predictable id.
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Store keeps task sessions in Redis. It is safe for concurrent use; every
// replica may hold its own Store on the same Redis.
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
		return nil, errors.New("sessions: New needs a Redis client")
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

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
