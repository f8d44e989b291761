package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Why a catalog was refused. Tests match these with errors.Is; the message
// of the returned *fault.Error names the service and field.
var (
	errSyntax          = errors.New("malformed catalog JSON")
	errHeader          = errors.New("bad catalog header")
	errID              = errors.New("bad service id")
	errDuplicateID     = errors.New("duplicate service id")
	errProvider        = errors.New("unknown provider")
	errText            = errors.New("missing name or description")
	errTool            = errors.New("unknown or missing tool")
	errNotInteger      = errors.New("price is not an integer")
	errNegativePrice   = errors.New("negative price")
	errCurrency        = errors.New("unknown currency")
	errInterval        = errors.New("unknown interval")
	errScopes          = errors.New("bad or missing scopes")
	errGates           = errors.New("bad gates")
	errUngatedPurchase = errors.New("paid service without a purchase gate")
	errDomain          = errors.New("bad domain registration entry")
	errSchema          = errors.New("bad config_schema")
	errTags            = errors.New("bad tags")
)

var (
	// provider/product or provider/product:variant, lowercase.
	idPattern    = regexp.MustCompile(`^[a-z]+/[a-z0-9]+(-[a-z0-9]+)*(:[a-z0-9]+([.-][a-z0-9]+)*)?$`)
	scopePattern = regexp.MustCompile(`^[a-z]+:[a-z]+$`)
	tldPattern   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)*$`)
)

var knownProviders = []string{ProviderCloudflare, ProviderStripe}

// knownTools are the provisioning tools of SPEC §6 that a service may name.
var knownTools = []string{
	"account_connect", "billing_setup", "domain_check", "domain_register",
	"dns_upsert", "ssl_configure", "api_token_create", "deploy_preview",
	"deploy_promote", "subscription_start",
}

// knownGates are the gate kinds of SPEC §8 that a service may ask.
var knownGates = []string{"authentication", "terms", "billing", "production", "purchase", "cap_raise"}

type rawCatalog struct {
	PricesAsOf   string       `json:"prices_as_of"`
	PricesSource string       `json:"prices_source"`
	Services     []rawService `json:"services"`
}

type rawService struct {
	ID           string          `json:"id"`
	Provider     string          `json:"provider"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Tool         string          `json:"tool"`
	Pricing      rawPricing      `json:"pricing"`
	TLD          string          `json:"tld"`
	MinYears     int             `json:"min_years"`
	Scopes       []string        `json:"scopes"`
	Gates        []string        `json:"gates"`
	ConfigSchema json.RawMessage `json:"config_schema"`
	Tags         []string        `json:"tags"`
}

type rawPricing struct {
	// Raw, so that 10.5, 1e3 and "10" are told apart from 10 and refused.
	AmountMinor json.RawMessage `json:"amount_minor"`
	Currency    string          `json:"currency"`
	Interval    string          `json:"interval"`
}

// parse decodes and validates a catalog document. Unknown fields anywhere
// are refused, so a typo cannot silently drop a gate or a scope.
func parse(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw rawCatalog
	if err := dec.Decode(&raw); err != nil {
		return nil, invalid(errSyntax, "%v", err)
	}
	if dec.More() {
		return nil, invalid(errSyntax, "trailing data after the catalog object")
	}
	if _, err := time.Parse(time.DateOnly, raw.PricesAsOf); err != nil {
		return nil, invalid(errHeader, "prices_as_of %q is not a YYYY-MM-DD date", raw.PricesAsOf)
	}
	if raw.PricesSource == "" {
		return nil, invalid(errHeader, "prices_source is empty; say where the prices come from")
	}
	if len(raw.Services) == 0 {
		return nil, invalid(errHeader, "no services")
	}
	c := &Catalog{
		asOf:   raw.PricesAsOf,
		source: raw.PricesSource,
		byID:   make(map[string]int, len(raw.Services)),
		byTLD:  make(map[string]int),
	}
	for i, rs := range raw.Services {
		s, err := validate(i, rs)
		if err != nil {
			return nil, err
		}
		if _, dup := c.byID[s.ID]; dup {
			return nil, invalid(errDuplicateID, "service %q is listed twice", s.ID)
		}
		if s.TLD != "" {
			if prev, dup := c.byTLD[s.TLD]; dup {
				return nil, invalid(errDomain, "services %q and %q both register .%s", c.services[prev].ID, s.ID, s.TLD)
			}
			c.byTLD[s.TLD] = len(c.services)
		}
		c.byID[s.ID] = len(c.services)
		c.services = append(c.services, s)
		c.text = append(c.text, newSearchText(s))
	}
	return c, nil
}

func validate(i int, rs rawService) (Service, error) {
	if !idPattern.MatchString(rs.ID) {
		return Service{}, invalid(errID, "service #%d: id %q is not of the form provider/product[:variant] in lowercase", i, rs.ID)
	}
	at := func(kind error, format string, args ...any) error {
		return invalid(kind, "service %q: %s", rs.ID, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(knownProviders, rs.Provider) {
		return Service{}, at(errProvider, "provider %q is not one of %v", rs.Provider, knownProviders)
	}
	if provider, _, _ := strings.Cut(rs.ID, "/"); provider != rs.Provider {
		return Service{}, at(errID, "id does not start with its provider %q", rs.Provider)
	}
	if rs.Name == "" || rs.Description == "" {
		return Service{}, at(errText, "name and description are required")
	}
	if !slices.Contains(knownTools, rs.Tool) {
		return Service{}, at(errTool, "tool %q is not a provisioning tool of SPEC §6", rs.Tool)
	}
	pricing, err := validatePricing(rs.Pricing, at)
	if err != nil {
		return Service{}, err
	}
	if len(rs.Scopes) == 0 {
		return Service{}, at(errScopes, "no scopes; every tool needs at least one")
	}
	for j, sc := range rs.Scopes {
		if !scopePattern.MatchString(sc) || slices.Contains(rs.Scopes[:j], sc) {
			return Service{}, at(errScopes, "scope %q is malformed or repeated (want resource:action)", sc)
		}
	}
	for j, g := range rs.Gates {
		if !slices.Contains(knownGates, g) || slices.Contains(rs.Gates[:j], g) {
			return Service{}, at(errGates, "gate %q is unknown or repeated (known: %v)", g, knownGates)
		}
	}
	// SPEC §8: purchases and subscriptions can be put before a human, so a
	// service that costs money must declare the purchase gate.
	if !pricing.Free() && !slices.Contains(rs.Gates, "purchase") {
		return Service{}, at(errUngatedPurchase, "costs %s but declares no purchase gate", pricing.Price())
	}
	if err := validateDomain(rs, pricing, at); err != nil {
		return Service{}, err
	}
	schema, err := validateSchema(rs.ConfigSchema, at)
	if err != nil {
		return Service{}, err
	}
	if len(rs.Tags) == 0 || slices.Contains(rs.Tags, "") {
		return Service{}, at(errTags, "tags must be a non-empty list of words")
	}
	return Service{
		ID: rs.ID, Provider: rs.Provider, Name: rs.Name, Description: rs.Description,
		Tool: rs.Tool, Pricing: pricing, TLD: rs.TLD, MinYears: rs.MinYears,
		Scopes: slices.Clone(rs.Scopes), Gates: append([]string{}, rs.Gates...),
		ConfigSchema: schema, Tags: slices.Clone(rs.Tags),
	}, nil
}

type errorAt func(kind error, format string, args ...any) error

func validatePricing(rp rawPricing, at errorAt) (Pricing, error) {
	amount := bytes.TrimSpace(rp.AmountMinor)
	if len(amount) == 0 {
		return Pricing{}, at(errNotInteger, "pricing.amount_minor is missing")
	}
	// A JSON string or a fraction is refused: money is integer minor units.
	n, err := strconv.ParseInt(string(amount), 10, 64)
	if err != nil {
		return Pricing{}, at(errNotInteger, "pricing.amount_minor %s is not an integer number of minor units", truncate(string(amount), 40))
	}
	if n < 0 {
		return Pricing{}, at(errNegativePrice, "pricing.amount_minor %d is negative", n)
	}
	if _, ok := money.Exponent(rp.Currency); !ok || rp.Currency != strings.ToLower(rp.Currency) {
		return Pricing{}, at(errCurrency, "pricing.currency %q is not a supported lowercase currency", rp.Currency)
	}
	iv := Interval(rp.Interval)
	if !iv.Valid() {
		return Pricing{}, at(errInterval, "pricing.interval %q is not once, month or year", rp.Interval)
	}
	return NewPricing(money.Money{Minor: n, Currency: rp.Currency}, iv), nil
}

func validateDomain(rs rawService, p Pricing, at errorAt) error {
	if rs.TLD == "" {
		if rs.MinYears != 0 {
			return at(errDomain, "min_years is set but tld is not")
		}
		return nil
	}
	if rs.Tool != "domain_register" {
		return at(errDomain, "tld is set but the tool is %q, not domain_register", rs.Tool)
	}
	if !tldPattern.MatchString(rs.TLD) {
		return at(errDomain, "tld %q is not a lowercase label without a leading dot", rs.TLD)
	}
	if rs.MinYears < 1 || rs.MinYears > 10 {
		return at(errDomain, "min_years %d is outside 1..10", rs.MinYears)
	}
	if p.Interval != Year {
		return at(errDomain, "a registration is priced per year, not per %q", p.Interval)
	}
	return nil
}

// validateSchema requires a strict object schema (SPEC §6: strict schemas
// that reject unknown fields) and decodes it, keeping numbers exact.
func validateSchema(raw json.RawMessage, at errorAt) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, at(errSchema, "config_schema is missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var schema map[string]any
	if err := dec.Decode(&schema); err != nil || schema == nil {
		return nil, at(errSchema, "config_schema is not a JSON object")
	}
	if schema["type"] != "object" {
		return nil, at(errSchema, "config_schema.type must be \"object\"")
	}
	if schema["additionalProperties"] != false {
		return nil, at(errSchema, "config_schema must set additionalProperties to false")
	}
	if _, ok := schema["properties"].(map[string]any); !ok {
		return nil, at(errSchema, "config_schema.properties must be an object")
	}
	return schema, nil
}

func invalid(kind error, format string, args ...any) error {
	return fault.Wrap(kind, fault.Internal, "catalog: "+fmt.Sprintf(format, args...))
}
