package spend

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Defaults for the zero fields of Config.
const (
	DefaultPrefix    = "tg"
	DefaultHoldTTL   = 15 * time.Minute
	DefaultTimeout   = 2 * time.Second
	DefaultRetention = 400 * 24 * time.Hour
)

// DefaultCapMinor is the monthly cap per principal and provider when
// nothing overrides it, in US cents: USD 100.00 (SPEC §9.1).
const DefaultCapMinor = 10000

// DefaultCap returns USD 100.00, the cap when Config.DefaultCap is zero.
func DefaultCap() money.Money { return money.USD(DefaultCapMinor) }

// Config configures a Ledger. The zero value is valid and safe: every field
// has a default.
type Config struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only; it
	// must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// DefaultCap is the monthly cap per principal and provider (USD 100.00).
	DefaultCap money.Money
	// Caps overrides DefaultCap per provider, e.g. from `--cap stripe=50.00`
	// (see ParseCapFlag).
	Caps map[string]money.Money
	// CapFor, when set, overrides the cap for one principal and provider
	// (e.g. from policy); it reports false to fall back to Caps and
	// DefaultCap. A zero cap refuses every hold; a negative one, or one in
	// an unsupported currency, refuses every call as a configuration error.
	CapFor func(principal, provider string) (money.Money, bool)
	// HoldTTL is how long a hold lasts without a commit or release (15m).
	// After it, the hold expires and is listed for reconciliation.
	HoldTTL time.Duration
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	// For it to bound socket waits as well, build the client with
	// ContextTimeoutEnabled.
	Timeout time.Duration
	// Retention is how long counters and settled hold records are kept after
	// their last write (400 days).
	Retention time.Duration
	// Now is the clock (time.Now). Months and hold expiry are judged by this
	// clock, passed to the Lua scripts, never by Redis's own clock.
	Now func() time.Time
	// NewID returns a hold id when HoldRequest.HoldID is empty (128 random
	// bits, lowercase base32). Ids must match [A-Za-z0-9._~:-]{1,128}.
	NewID func() string
}

// Validate reports the first problem with c, naming the field and the fix.
func (c Config) Validate() error {
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		return fmt.Errorf("spend: Config.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", c.Prefix)
	}
	if c.DefaultCap != (money.Money{}) {
		if err := validCap(c.DefaultCap); err != nil {
			return fmt.Errorf("spend: Config.DefaultCap: %w", err)
		}
	}
	for p, m := range c.Caps {
		if !KnownProvider(p) {
			return fmt.Errorf("spend: Config.Caps: unknown provider %q (use %s)", p, strings.Join(Providers(), " or "))
		}
		if err := validCap(m); err != nil {
			return fmt.Errorf("spend: Config.Caps[%q]: %w", p, err)
		}
	}
	if c.HoldTTL < 0 {
		return errors.New("spend: Config.HoldTTL is negative: use 0 for the 15m default or a positive duration")
	}
	if c.HoldTTL > 0 && c.HoldTTL < time.Millisecond {
		return errors.New("spend: Config.HoldTTL is below a millisecond, the ledger's resolution")
	}
	if c.Timeout < 0 {
		return errors.New("spend: Config.Timeout is negative: use 0 for the 2s default or a positive duration")
	}
	if c.Retention < 0 {
		return errors.New("spend: Config.Retention is negative: use 0 for the 400-day default or a positive duration")
	}
	if c.Retention > 0 && c.Retention < time.Hour {
		return errors.New("spend: Config.Retention is under an hour: settled holds and counters would vanish before anyone reads them")
	}
	return nil
}

// validCap accepts a positive amount in a supported currency up to MaxMinor.
func validCap(m money.Money) error {
	if _, ok := money.Exponent(m.Currency); !ok {
		return fmt.Errorf("unsupported currency %q (use usd, eur or gbp)", m.Currency)
	}
	if m.Minor <= 0 {
		return fmt.Errorf("cap %s must be positive", m)
	}
	if m.Minor > MaxMinor {
		return fmt.Errorf("cap %s is above the ledger's maximum of %d minor units", m, int64(MaxMinor))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DefaultCap == (money.Money{}) {
		c.DefaultCap = DefaultCap()
	}
	c.DefaultCap.Currency = strings.ToLower(c.DefaultCap.Currency)
	caps := make(map[string]money.Money, len(c.Caps))
	for p, m := range c.Caps {
		m.Currency = strings.ToLower(m.Currency)
		caps[p] = m
	}
	c.Caps = caps
	if c.HoldTTL == 0 {
		c.HoldTTL = DefaultHoldTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
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
	// crypto/rand.Read never returns an error (Go 1.24+).
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Ledger keeps caps, budgets and holds in Redis. It is safe for concurrent
// use; every replica may hold its own Ledger on the same Redis.
type Ledger struct {
	rdb     redis.UniversalClient
	cfg     Config
	keys    keyspace
	scripts scripts

	mu      sync.Mutex
	touched map[string]time.Time // principal → last refresh of its index entry by this process (fused path)
}

// New returns a Ledger on rdb (a *redis.Client, *redis.ClusterClient or
// failover client). cfg is validated; zero fields take their defaults.
func New(rdb redis.UniversalClient, cfg Config) (*Ledger, error) {
	if rdb == nil {
		return nil, errors.New("spend: New needs a Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Ledger{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}, scripts: newScripts()}, nil
}

// capFor returns the cap of principal at provider: CapFor, then Caps, then
// DefaultCap. A cap CapFor got wrong refuses the call (fail closed).
func (l *Ledger) capFor(principal, provider string) (money.Money, error) {
	if l.cfg.CapFor != nil {
		if m, ok := l.cfg.CapFor(principal, provider); ok {
			m.Currency = strings.ToLower(m.Currency)
			if _, known := money.Exponent(m.Currency); !known || m.Minor < 0 || m.Minor > MaxMinor {
				return money.Money{}, internal("cap", "CapFor(%q, %q) returned %+v", principal, provider, m)
			}
			return m, nil
		}
	}
	if m, ok := l.cfg.Caps[provider]; ok {
		return m, nil
	}
	return l.cfg.DefaultCap, nil
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
