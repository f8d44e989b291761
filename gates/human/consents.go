package human

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Consents remembers the gates a principal answers once per provider:
// terms acceptance, per terms version (a new version asks again), and
// billing setup (version ""). Production changes, purchases and cap raises
// are never remembered: Remember and Has refuse those kinds. It is safe for
// concurrent use.
type Consents struct {
	rdb  redis.UniversalClient
	cfg  ConsentsConfig
	keys keyspace
}

// NewConsents returns Consents on rdb. cfg is validated; zero fields take
// their defaults.
func NewConsents(rdb redis.UniversalClient, cfg ConsentsConfig) (*Consents, error) {
	if rdb == nil {
		return nil, errNoClient
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Consents{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}}, nil
}

// Remember records that principal accepted kind at provider, for version.
// The first acceptance's time is kept; remembering again changes nothing.
// Call it only after the human's yes was verified (an opened state or a
// consumed approval). Refusals: fault.InvalidArgument, fault.Unavailable.
func (c *Consents) Remember(ctx context.Context, principal, provider string, kind Kind, version string) error {
	field, err := consentField(principal, provider, kind, version)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.rdb.HSetNX(ctx, c.keys.consents(principal), field, ms(c.cfg.Now())).Err(); err != nil {
		return unavailable("remember", err,
			"the gate store could not be reached, so the consent was not remembered and will be asked again; nothing was charged. Retry shortly.")
	}
	return nil
}

// Has reports whether principal accepted kind at provider for exactly this
// version. It fails closed: on any error it reports false, and a Redis
// failure is fault.Unavailable, so the caller asks (or refuses) rather than
// assume consent. One Redis round trip.
func (c *Consents) Has(ctx context.Context, principal, provider string, kind Kind, version string) (bool, error) {
	field, err := consentField(principal, provider, kind, version)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ok, err := c.rdb.HExists(ctx, c.keys.consents(principal), field).Result()
	if err != nil {
		return false, unavailable("has", err, msgReadDown)
	}
	return ok, nil
}

// consentField names a consent in the principal's consents hash:
// "<provider>|<kind>|<version>". Provider and kind cannot contain '|', so
// the version, last, may.
func consentField(principal, provider string, kind Kind, version string) (string, error) {
	switch {
	case !validPrincipal(principal):
		return "", invalid("the principal is missing or not printable text of at most %d bytes; nothing was charged or changed.", maxPrincipal)
	case !validProvider(provider):
		return "", invalid("the provider must match [a-z0-9._-]{1,%d}; nothing was charged or changed.", maxProvider)
	case !kind.Rememberable():
		return "", invalid("only terms acceptance and billing setup are remembered, not %q: every %q gate asks the human; nothing was charged or changed.", kind, kind)
	case kind == Terms && version == "":
		// A terms acceptance without a version would pass for every
		// future version of the terms.
		return "", invalid("a terms acceptance needs the terms version; nothing was charged or changed.")
	case version != "" && (!printable(version, maxVersion) || strings.ContainsAny(version, "\n\t")):
		return "", invalid("the version must be printable text of at most %d bytes; nothing was charged or changed.", maxVersion)
	}
	return provider + "|" + string(kind) + "|" + version, nil
}
