package human

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults for the zero fields of the configs.
const (
	DefaultPrefix    = "tg"
	DefaultStateTTL  = 10 * time.Minute
	DefaultTTL       = 10 * time.Minute
	DefaultRetention = 24 * time.Hour
	DefaultTimeout   = 2 * time.Second
)

// SealerConfig configures a Sealer. The zero value is valid and safe.
type SealerConfig struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only.
	Prefix string
	// TTL is how long a sealed state may be answered (10m). A retry after
	// it is refused with state_expired: a late accept is no accept.
	TTL time.Duration
	// Now is the clock (time.Now). Expiry is judged by this clock, never by
	// Redis's.
	Now func() time.Time
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	Timeout time.Duration
}

// Validate reports the first problem with c, naming the field and the fix.
func (c SealerConfig) Validate() error {
	if err := checkCommon("SealerConfig", c.Prefix, c.Timeout); err != nil {
		return err
	}
	return checkTTL("SealerConfig.TTL", c.TTL, "10m")
}

func (c SealerConfig) withDefaults() SealerConfig {
	c.Prefix, c.Timeout, c.Now = commonDefaults(c.Prefix, c.Timeout, c.Now)
	if c.TTL == 0 {
		c.TTL = DefaultStateTTL
	}
	return c
}

// ApprovalsConfig configures Approvals. The zero value is valid and safe.
type ApprovalsConfig struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only.
	Prefix string
	// TTL is how long an approval may be decided and used (10m).
	TTL time.Duration
	// Retention is how long a record is kept after it expires, so that the
	// page and `tollgate approvals list` can still show it (24h).
	Retention time.Duration
	// Now is the clock (time.Now). Expiry is judged by this clock, passed
	// to the Lua scripts, never by Redis's.
	Now func() time.Time
	// NewID returns a fresh approval id (RandomID: 128 random bits, URL-safe).
	// Ids must match [A-Za-z0-9._~-]{1,128}.
	NewID func() string
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	Timeout time.Duration
	// MaxPending is how many approvals one principal may have asked for
	// within TTL (0: no limit); Create refuses one more with
	// too_many_requests.
	MaxPending int
}

// Validate reports the first problem with c, naming the field and the fix.
func (c ApprovalsConfig) Validate() error {
	if err := checkCommon("ApprovalsConfig", c.Prefix, c.Timeout); err != nil {
		return err
	}
	if err := checkTTL("ApprovalsConfig.TTL", c.TTL, "10m"); err != nil {
		return err
	}
	if c.Retention < 0 {
		return errors.New("human: ApprovalsConfig.Retention is negative: use 0 for the 24h default or a positive duration")
	}
	if c.MaxPending < 0 {
		return errors.New("human: ApprovalsConfig.MaxPending is negative: use 0 for no limit or a positive count")
	}
	return nil
}

func (c ApprovalsConfig) withDefaults() ApprovalsConfig {
	c.Prefix, c.Timeout, c.Now = commonDefaults(c.Prefix, c.Timeout, c.Now)
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.NewID == nil {
		c.NewID = RandomID
	}
	return c
}

// ConsentsConfig configures Consents. The zero value is valid and safe.
type ConsentsConfig struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only.
	Prefix string
	// Now is the clock (time.Now); it stamps when a consent was given.
	Now func() time.Time
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	Timeout time.Duration
}

// Validate reports the first problem with c, naming the field and the fix.
func (c ConsentsConfig) Validate() error { return checkCommon("ConsentsConfig", c.Prefix, c.Timeout) }

func (c ConsentsConfig) withDefaults() ConsentsConfig {
	c.Prefix, c.Timeout, c.Now = commonDefaults(c.Prefix, c.Timeout, c.Now)
	return c
}

func checkCommon(what, prefix string, timeout time.Duration) error {
	if prefix != "" && !validPrefix(prefix) {
		return fmt.Errorf("human: %s.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", what, prefix)
	}
	if timeout < 0 {
		return fmt.Errorf("human: %s.Timeout is negative: use 0 for the 2s default or a positive duration", what)
	}
	return nil
}

func checkTTL(field string, ttl time.Duration, def string) error {
	if ttl < 0 {
		return fmt.Errorf("human: %s is negative: use 0 for the %s default or a positive duration", field, def)
	}
	if ttl > 0 && ttl < time.Second {
		return fmt.Errorf("human: %s is under a second: no human answers that fast", field)
	}
	return nil
}

func commonDefaults(prefix string, timeout time.Duration, now func() time.Time) (string, time.Duration, func() time.Time) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	return prefix, timeout, now
}

// RandomID returns 128 bits from crypto/rand as 26 lowercase base32
// characters: URL-safe, and the default ApprovalsConfig.NewID.
func RandomID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program rather than hand out a predictable id.
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
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

// ms is t in unix milliseconds, the unit of every time in Redis.
func ms(t time.Time) int64 { return t.UnixMilli() }
