package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// RFC 9396 authorization_details types tollgate understands (SPEC §4.2).
const (
	DetailResources = "tollgate:resources" // the domains a token may touch
	DetailSpend     = "tollgate:spend"     // a task budget for one provider
)

// Limits on an authorization_details array; anything larger is refused.
const (
	maxDetails       = 16
	maxDetailDomains = 100
)

// spendProvider reports whether a tollgate:spend entry may name p.
func spendProvider(p string) bool { return p == "cloudflare" || p == "stripe" }

// AuthorizationDetail is one RFC 9396 entry. Which fields are set depends on
// Type: Domains for tollgate:resources; Provider, MaxAmount and Currency for
// tollgate:spend. Values that went through ParseAuthorizationDetails are
// canonical: lowercase domains and currency, MaxAmount as money.Decimal.
type AuthorizationDetail struct {
	Type      string   `json:"type"`
	Domains   []string `json:"domains,omitempty"`
	Provider  string   `json:"provider,omitempty"`
	MaxAmount string   `json:"max_amount,omitempty"`
	Currency  string   `json:"currency,omitempty"`
}

// AuthorizationDetails is the authorization_details claim. Decoding it from
// JSON goes through ParseAuthorizationDetails, so a token carrying an
// unknown type or field does not decode.
type AuthorizationDetails []AuthorizationDetail

// ResourcesDetail returns a tollgate:resources entry for domains.
func ResourcesDetail(domains ...string) (AuthorizationDetail, error) {
	d := AuthorizationDetail{Type: DetailResources, Domains: domains}
	if err := d.normalize(); err != nil {
		return AuthorizationDetail{}, fault.Wrap(err, fault.InvalidArgument, "authorization_details: "+err.Error())
	}
	return d, nil
}

// SpendDetail returns a tollgate:spend entry allowing up to limit at provider.
func SpendDetail(provider string, limit money.Money) (AuthorizationDetail, error) {
	d := AuthorizationDetail{Type: DetailSpend, Provider: provider, MaxAmount: limit.Decimal(), Currency: limit.Currency}
	if err := d.normalize(); err != nil {
		return AuthorizationDetail{}, fault.Wrap(err, fault.InvalidArgument, "authorization_details: "+err.Error())
	}
	return d, nil
}

// Budget returns the spend limit of a tollgate:spend entry.
func (d AuthorizationDetail) Budget() (money.Money, error) {
	if d.Type != DetailSpend {
		return money.Money{}, fmt.Errorf("auth: %s entry has no budget", d.Type)
	}
	return money.Parse(d.MaxAmount, d.Currency)
}

// Domains returns the domains the details restrict a token to, and false
// when no tollgate:resources entry restricts it.
func (ds AuthorizationDetails) Domains() ([]string, bool) {
	for _, d := range ds {
		if d.Type == DetailResources {
			return d.Domains, true
		}
	}
	return nil, false
}

// Budget returns the spend limit for provider, and false when there is none.
func (ds AuthorizationDetails) Budget(provider string) (money.Money, bool) {
	for _, d := range ds {
		if d.Type == DetailSpend && d.Provider == provider {
			m, err := d.Budget()
			return m, err == nil
		}
	}
	return money.Money{}, false
}

// UnmarshalJSON parses strictly; see ParseAuthorizationDetails.
func (ds *AuthorizationDetails) UnmarshalJSON(b []byte) error {
	v, err := ParseAuthorizationDetails(b)
	if err != nil {
		return err
	}
	*ds = v
	return nil
}

// ParseAuthorizationDetails parses an RFC 9396 authorization_details JSON
// array. It refuses unknown types and unknown fields (RFC 9396 §5: an AS
// must refuse what it does not understand rather than ignore it),
// duplicate member names, a second tollgate:resources entry, two spend
// entries for one provider, bad domains and amounts. JSON null and an empty
// array mean no details.
func ParseAuthorizationDetails(data []byte) (AuthorizationDetails, error) {
	ds, err := parseDetails(data)
	if err != nil {
		return nil, fault.Wrap(err, fault.InvalidArgument,
			"authorization_details refused: "+err.Error()+`; send a JSON array of {"type":"tollgate:resources","domains":[…]} and {"type":"tollgate:spend","provider":"cloudflare"|"stripe","max_amount":"20.00","currency":"usd"} entries`)
	}
	return ds, nil
}

func parseDetails(data []byte) (AuthorizationDetails, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	if err := scanJSON(data, 4); err != nil {
		return nil, err
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON array of objects")
	}
	if len(raw) > maxDetails {
		return nil, fmt.Errorf("%d entries, at most %d allowed", len(raw), maxDetails)
	}
	var out AuthorizationDetails
	seen := map[string]bool{}
	for i, m := range raw {
		d, err := parseDetail(m)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		key := d.Type + "/" + d.Provider
		if seen[key] {
			return nil, fmt.Errorf("entry %d: a second %s entry%s is ambiguous", i, d.Type, forProvider(d.Provider))
		}
		seen[key] = true
		out = append(out, d)
	}
	return out, nil
}

func forProvider(p string) string {
	if p == "" {
		return ""
	}
	return " for " + p
}

// parseDetail reads one entry; member names match exactly (encoding/json
// alone would match "DOMAINS" to Domains and ignore unknown names).
func parseDetail(m map[string]json.RawMessage) (AuthorizationDetail, error) {
	var d AuthorizationDetail
	if err := strictString(m, "type", &d.Type); err != nil || d.Type == "" {
		return d, fmt.Errorf("missing or non-string type")
	}
	allowed := map[string]bool{"type": true}
	switch d.Type {
	case DetailResources:
		allowed["domains"] = true
		raw, ok := m["domains"]
		if !ok || json.Unmarshal(raw, &d.Domains) != nil {
			return d, fmt.Errorf("tollgate:resources needs domains, an array of strings")
		}
	case DetailSpend:
		for _, f := range []struct {
			name string
			dst  *string
		}{{"provider", &d.Provider}, {"max_amount", &d.MaxAmount}, {"currency", &d.Currency}} {
			allowed[f.name] = true
			if err := strictString(m, f.name, f.dst); err != nil {
				return d, fmt.Errorf("tollgate:spend needs %s as a string", f.name)
			}
		}
	default:
		return d, fmt.Errorf("unknown type %q", d.Type)
	}
	for name := range m {
		if !allowed[name] {
			return d, fmt.Errorf("unknown field %q in %s", name, d.Type)
		}
	}
	return d, d.normalize()
}

func strictString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok {
		return fmt.Errorf("missing %s", name)
	}
	return json.Unmarshal(raw, dst)
}

// normalize validates the entry and puts it in canonical form.
func (d *AuthorizationDetail) normalize() error {
	switch d.Type {
	case DetailResources:
		if d.Provider != "" || d.MaxAmount != "" || d.Currency != "" {
			return fmt.Errorf("tollgate:resources takes only domains")
		}
		if len(d.Domains) == 0 || len(d.Domains) > maxDetailDomains {
			return fmt.Errorf("tollgate:resources needs 1 to %d domains", maxDetailDomains)
		}
		seen := make(map[string]bool, len(d.Domains))
		norm := make([]string, len(d.Domains))
		for i, dom := range d.Domains {
			n, err := normalizeDomain(dom)
			if err != nil {
				return err
			}
			if seen[n] {
				return fmt.Errorf("domain %q listed twice", n)
			}
			seen[n] = true
			norm[i] = n
		}
		d.Domains = norm
	case DetailSpend:
		if d.Domains != nil {
			return fmt.Errorf("tollgate:spend takes no domains")
		}
		if !spendProvider(d.Provider) {
			return fmt.Errorf("provider %q is not cloudflare or stripe", d.Provider)
		}
		m, err := money.Parse(d.MaxAmount, d.Currency)
		if err != nil {
			return err
		}
		d.MaxAmount, d.Currency = m.Decimal(), m.Currency
	default:
		return fmt.Errorf("unknown type %q", d.Type)
	}
	return nil
}

// normalizeDomain accepts an ASCII (punycode) host name of at least two
// labels and returns it lowercased. Wildcards, trailing dots, IP addresses
// and underscores are refused: each would make "which zone" ambiguous.
func normalizeDomain(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		// Lowercase only ASCII: strings.ToLower maps the Kelvin sign to 'k'.
		if s[i] >= 0x80 {
			return "", fmt.Errorf("domain %q is not ASCII; use its punycode (xn--) form", s)
		}
	}
	d := strings.ToLower(s)
	if len(d) == 0 || len(d) > 253 {
		return "", fmt.Errorf("domain %q must be 1 to 253 characters", s)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("domain %q needs at least two labels", s)
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("domain %q has an empty, overlong or hyphen-edged label", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("domain %q has a character outside a-z, 0-9 and '-'", s)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("domain %q looks like an IP address", s)
	}
	return d, nil
}
