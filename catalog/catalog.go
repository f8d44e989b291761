package catalog

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Providers whose services the catalog lists.
const (
	ProviderCloudflare = "cloudflare"
	ProviderStripe     = "stripe"
)

//go:embed catalog.json
var embedded []byte

// Service is one thing an agent can provision: its price, the tool that
// provisions it, the scopes that tool needs and the human gates it may ask.
// It marshals to the wire form of /v1/catalog, catalog_search and catalog_get.
type Service struct {
	ID           string         `json:"id" jsonschema_description:"catalog id, e.g. cloudflare/registrar:domain.com"`
	Provider     string         `json:"provider" jsonschema_description:"cloudflare or stripe"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Tool         string         `json:"tool" jsonschema_description:"the MCP tool that provisions this service"`
	Pricing      Pricing        `json:"pricing" jsonschema_description:"list price; domain prices are re-checked live by domain_check"`
	TLD          string         `json:"tld,omitempty" jsonschema_description:"for domain registrations: the top-level domain, without a dot"`
	MinYears     int            `json:"min_years,omitempty" jsonschema_description:"for domain registrations: the shortest registration term in years"`
	Scopes       []string       `json:"scopes" jsonschema_description:"token scopes the tool needs"`
	Gates        []string       `json:"gates" jsonschema_description:"human gates the tool may ask: authentication, terms, billing, production, purchase"`
	ConfigSchema map[string]any `json:"config_schema" jsonschema_description:"JSON Schema of the tool arguments for this service"`
	Tags         []string       `json:"tags" jsonschema_description:"search words"`
}

// clone returns a deep copy, so callers can never change the catalog.
func (s Service) clone() Service {
	s.Scopes = slices.Clone(s.Scopes)
	s.Gates = slices.Clone(s.Gates)
	s.Tags = slices.Clone(s.Tags)
	s.ConfigSchema, _ = cloneJSON(s.ConfigSchema).(map[string]any)
	return s
}

// cloneJSON deep-copies a value decoded from JSON (maps, slices, scalars).
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneJSON(e)
		}
		return out
	default:
		return v
	}
}

// Catalog is the parsed, validated service catalog. It is immutable and safe
// for concurrent use; every method returns copies.
type Catalog struct {
	asOf     string
	source   string
	services []Service // catalog order
	byID     map[string]int
	byTLD    map[string]int
	text     []searchText // lowercased search fields, parallel to services
}

// Load parses and validates the catalog embedded in the binary. An error
// means the embedded file is broken, which is a build bug: refuse to start.
func Load() (*Catalog, error) { return parse(embedded) }

// PricesAsOf is the date (YYYY-MM-DD) on which the catalog's prices were
// known to be current.
func (c *Catalog) PricesAsOf() string { return c.asOf }

// PricesSource says where the prices come from and how far to trust them.
func (c *Catalog) PricesSource() string { return c.source }

// Len is the number of services.
func (c *Catalog) Len() int { return len(c.services) }

// All returns every service in catalog order.
func (c *Catalog) All() []Service { return c.pick(func(Service) bool { return true }) }

// Get returns the service with exactly this id.
func (c *Catalog) Get(id string) (Service, error) {
	if strings.TrimSpace(id) == "" {
		return Service{}, fault.New(fault.InvalidArgument,
			"catalog: a service id is required; find one with catalog_search{query} or GET /v1/catalog?q=")
	}
	i, ok := c.byID[id]
	if !ok {
		return Service{}, fault.Newf(fault.NotFound,
			"catalog: no service has id %q; ids look like cloudflare/registrar:domain.com — search with catalog_search{query} or GET /v1/catalog?q=",
			truncate(id, 100))
	}
	return c.services[i].clone(), nil
}

// Providers lists the providers that have at least one service, sorted.
func (c *Catalog) Providers() []string {
	var out []string
	for _, s := range c.services {
		if !slices.Contains(out, s.Provider) {
			out = append(out, s.Provider)
		}
	}
	slices.Sort(out)
	return out
}

// ByProvider returns the services of one provider (exact name), in catalog order.
func (c *Catalog) ByProvider(provider string) []Service {
	return c.pick(func(s Service) bool { return s.Provider == provider })
}

// ForTool returns the services a tool provisions, in catalog order. A tool
// may provision several (domain_register one per TLD, subscription_start
// one per plan); which one a call means depends on its arguments.
func (c *Catalog) ForTool(tool string) []Service {
	return c.pick(func(s Service) bool { return s.Tool == tool })
}

// DomainPrice returns the registration service for a top-level domain.
// tld may be given as "com", ".com" or "COM". ok is false when the catalog
// does not list the TLD.
func (c *Catalog) DomainPrice(tld string) (s Service, ok bool) {
	t := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(tld), "."))
	i, ok := c.byTLD[t]
	if !ok {
		return Service{}, false
	}
	return c.services[i].clone(), true
}

// Plan resolves the plan argument of subscription_start to its service. It
// takes the full id ("stripe/subscription:plan.starter") or, when exactly one
// plan matches, the part after the colon ("plan.starter") or the bare name
// ("starter").
func (c *Catalog) Plan(plan string) (Service, error) {
	p := strings.ToLower(strings.TrimSpace(plan))
	if p == "" {
		return Service{}, fault.New(fault.InvalidArgument,
			"catalog: a plan is required; list plans with catalog_search{query:\"plan\"}")
	}
	var found []int
	for i, s := range c.services {
		if s.Tool != "subscription_start" {
			continue
		}
		_, variant, _ := strings.Cut(s.ID, ":")
		if s.ID == p {
			return s.clone(), nil
		}
		if variant == p || variant == "plan."+p {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 1:
		return c.services[found[0]].clone(), nil
	case 0:
		return Service{}, fault.Newf(fault.NotFound,
			"catalog: no subscription plan %q; list plans with catalog_search{query:\"plan\"} and pass the full id",
			truncate(plan, 100))
	default:
		ids := make([]string, len(found))
		for j, i := range found {
			ids[j] = c.services[i].ID
		}
		return Service{}, fault.Newf(fault.InvalidArgument,
			"catalog: plan %q is ambiguous; pass one of the full ids: %s", truncate(plan, 100), strings.Join(ids, ", "))
	}
}

// MarshalJSON renders the /v1/catalog document:
// {"prices_as_of": "...", "prices_source": "...", "services": [...]}.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		PricesAsOf   string    `json:"prices_as_of"`
		PricesSource string    `json:"prices_source"`
		Services     []Service `json:"services"`
	}{c.asOf, c.source, c.services})
}

func (c *Catalog) pick(keep func(Service) bool) []Service {
	out := []Service{}
	for _, s := range c.services {
		if keep(s) {
			out = append(out, s.clone())
		}
	}
	return out
}

// truncate keeps error messages bounded when an id comes from a caller.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
