package loopguard

import (
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of Config.
const (
	DefaultPrefix       = "tg"
	DefaultPerSession   = 60
	DefaultPerPrincipal = 120
	DefaultWindow       = time.Minute
	DefaultRepeatLimit  = 3
	DefaultRepeatWindow = time.Minute
	DefaultCooldown     = time.Minute
	DefaultTimeout      = 2 * time.Second
)

// Config configures a Guard. The zero value is valid and safe: every field
// has a default.
type Config struct {
	// Prefix starts every key ("tg"). Letters, digits and "_.:-" only; it
	// must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// PerSession is how many calls one task session may make per Window (60).
	PerSession int
	// PerPrincipal is how many calls all sessions of one principal may make
	// per Window together (120).
	PerPrincipal int
	// Window is the sliding window of both rate limits (1m).
	Window time.Duration
	// RepeatLimit is how many refusals of the same call (principal, tool,
	// argument digest) within RepeatWindow start its Cooldown (3).
	RepeatLimit int
	// RepeatWindow is the window in which refusals are counted (1m).
	RepeatWindow time.Duration
	// Cooldown is how long a looping call is refused with loop_detected (1m).
	Cooldown time.Duration
	// Now is the clock (time.Now). Windows and cooldowns are judged by this
	// clock, passed to the Lua scripts, never by Redis's own clock.
	Now func() time.Time
	// Timeout bounds each Redis operation (2s). A timeout refuses the call.
	// For it to bound socket waits as well, build the client with
	// ContextTimeoutEnabled.
	Timeout time.Duration
}

// Validate reports the first problem with c, naming the field and the fix.
func (c Config) Validate() error {
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		return fmt.Errorf("loopguard: Config.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", c.Prefix)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"PerSession", c.PerSession}, {"PerPrincipal", c.PerPrincipal}, {"RepeatLimit", c.RepeatLimit}} {
		if f.v < 0 {
			return fmt.Errorf("loopguard: Config.%s is negative: use 0 for the default or a positive count", f.name)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Window", c.Window}, {"RepeatWindow", c.RepeatWindow}, {"Cooldown", c.Cooldown}, {"Timeout", c.Timeout}} {
		if f.v < 0 {
			return fmt.Errorf("loopguard: Config.%s is negative: use 0 for the default or a positive duration", f.name)
		}
		if f.v != 0 && f.v < time.Millisecond {
			return fmt.Errorf("loopguard: Config.%s %v is below a millisecond, the unit kept in Redis", f.name, f.v)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.PerSession == 0 {
		c.PerSession = DefaultPerSession
	}
	if c.PerPrincipal == 0 {
		c.PerPrincipal = DefaultPerPrincipal
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.RepeatLimit == 0 {
		c.RepeatLimit = DefaultRepeatLimit
	}
	if c.RepeatWindow == 0 {
		c.RepeatWindow = DefaultRepeatWindow
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Guard rate-limits calls and detects loops in Redis. It is safe for
// concurrent use; every replica may hold its own Guard on the same Redis.
type Guard struct {
	rdb     redis.UniversalClient
	cfg     Config
	keys    keyspace
	scripts scripts
}

// New returns a Guard on rdb (a *redis.Client, *redis.ClusterClient or
// failover client). cfg is validated; zero fields take their defaults.
func New(rdb redis.UniversalClient, cfg Config) (*Guard, error) {
	if rdb == nil {
		return nil, errors.New("loopguard: New needs a Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Guard{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}, scripts: newScripts()}, nil
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
