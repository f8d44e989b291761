package spend

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// MaxMinor bounds every amount, cap and budget the ledger accepts: 10^15
// minor units (10 trillion dollars). The Lua scripts compare sums in
// doubles, which are exact only below 2^53; this bound keeps every sum the
// ledger can reach far below it.
const MaxMinor = 1_000_000_000_000_000

// The providers tollgate can pay (SPEC §11).
const (
	Cloudflare = "cloudflare"
	Stripe     = "stripe"
)

// Providers lists the known providers, sorted.
func Providers() []string { return []string{Cloudflare, Stripe} }

// KnownProvider reports whether p is a provider tollgate can pay.
func KnownProvider(p string) bool { return slices.Contains(Providers(), p) }

// ParseCapFlag reads a `--cap PROVIDER=AMOUNT` value such as
// "stripe=50.00": a known provider (case-insensitive, returned lowercase)
// and a positive decimal amount in US dollars with at most two decimals, up
// to MaxMinor cents. It refuses anything else with a message that says how
// to write it.
func ParseCapFlag(v string) (string, money.Money, error) {
	const usage = `; write --cap PROVIDER=AMOUNT, e.g. --cap stripe=50.00 (USD, up to two decimals)`
	provider, amount, ok := strings.Cut(v, "=")
	if !ok {
		return "", money.Money{}, fmt.Errorf("spend: cap %q has no '='%s", v, usage)
	}
	provider = strings.ToLower(provider)
	if !KnownProvider(provider) {
		return "", money.Money{}, fmt.Errorf("spend: cap %q: unknown provider %q (use %s)%s",
			v, provider, strings.Join(Providers(), " or "), usage)
	}
	m, err := money.Parse(amount, "usd")
	if err != nil {
		return "", money.Money{}, fmt.Errorf("spend: cap %q: %w%s", v, err, usage)
	}
	if m.Minor <= 0 {
		return "", money.Money{}, fmt.Errorf("spend: cap %q: the amount must be above zero%s", v, usage)
	}
	if m.Minor > MaxMinor {
		return "", money.Money{}, fmt.Errorf("spend: cap %q: the amount is above the ledger's maximum of %s%s",
			v, money.USD(MaxMinor), usage)
	}
	return provider, m, nil
}
