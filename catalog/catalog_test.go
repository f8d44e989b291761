package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

func mustLoad(t testing.TB) *Catalog {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func ids(ss []Service) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func TestEmbeddedCatalogLoadsAndValidates(t *testing.T) {
	c := mustLoad(t)
	if c.Len() < 25 {
		t.Fatalf("Len = %d, want the full catalog", c.Len())
	}
	if _, err := time.Parse(time.DateOnly, c.PricesAsOf()); err != nil {
		t.Errorf("PricesAsOf %q is not a date: %v", c.PricesAsOf(), err)
	}
	if c.PricesSource() == "" {
		t.Error("PricesSource is empty")
	}
	if got, want := c.Providers(), []string{"cloudflare", "stripe"}; !slices.Equal(got, want) {
		t.Errorf("Providers = %v, want %v", got, want)
	}
	// The services the spec and the other packages rely on by id.
	for _, id := range []string{
		"cloudflare/account", "stripe/billing:payment-method", "cloudflare/registrar:check",
		"cloudflare/registrar:domain.com", "cloudflare/zone:plan.free", "cloudflare/zone:plan.pro",
		"cloudflare/zone:plan.business", "cloudflare/dns:record", "cloudflare/ssl:settings",
		"cloudflare/api-token", "cloudflare/workers:plan.free", "cloudflare/workers:plan.paid",
		"cloudflare/workers:promote", "stripe/subscription:plan.starter", "stripe/subscription:plan.team",
	} {
		if _, err := c.Get(id); err != nil {
			t.Errorf("Get(%q): %v", id, err)
		}
	}
	// Every provisioning tool of SPEC §6 has at least one service.
	for _, tool := range knownTools {
		if len(c.ForTool(tool)) == 0 {
			t.Errorf("no service for tool %s", tool)
		}
	}
}

func TestListPricesOfNamedServices(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		id       string
		minor    int64
		interval Interval
		gates    []string
	}{
		{"cloudflare/zone:plan.free", 0, Month, []string{}},
		{"cloudflare/zone:plan.pro", 2500, Month, []string{"purchase"}},
		{"cloudflare/zone:plan.business", 25000, Month, []string{"purchase"}},
		{"cloudflare/workers:plan.free", 0, Month, []string{}},
		{"cloudflare/workers:plan.paid", 500, Month, []string{"purchase"}},
		{"cloudflare/dns:record", 0, Once, []string{}},
		{"cloudflare/ssl:settings", 0, Once, []string{}},
		{"cloudflare/api-token", 0, Once, []string{}},
		{"cloudflare/account", 0, Once, []string{"authentication", "terms"}},
		{"stripe/billing:payment-method", 0, Once, []string{"billing"}},
		{"cloudflare/workers:promote", 0, Once, []string{"production"}},
		{"stripe/subscription:plan.starter", 900, Month, []string{"purchase"}},
		{"stripe/subscription:plan.team", 4900, Month, []string{"purchase"}},
	} {
		s, err := c.Get(tc.id)
		if err != nil {
			t.Fatalf("Get(%q): %v", tc.id, err)
		}
		if s.Pricing.Minor != tc.minor || s.Pricing.Interval != tc.interval || s.Pricing.Currency != "usd" {
			t.Errorf("%s pricing = %+v, want %d usd per %s", tc.id, s.Pricing, tc.minor, tc.interval)
		}
		if !slices.Equal(s.Gates, tc.gates) {
			t.Errorf("%s gates = %v, want %v", tc.id, s.Gates, tc.gates)
		}
	}
}

func TestDomainRegistrationCoversAtLeastTwelveTLDs(t *testing.T) {
	c := mustLoad(t)
	var tlds []string
	for _, s := range c.ForTool("domain_register") {
		if s.TLD == "" {
			continue
		}
		tlds = append(tlds, s.TLD)
		if s.ID != "cloudflare/registrar:domain."+s.TLD {
			t.Errorf("%s: id does not name its tld %q", s.ID, s.TLD)
		}
		if s.Pricing.Interval != Year || s.Pricing.Minor <= 0 || s.MinYears < 1 {
			t.Errorf("%s: pricing %+v min_years %d, want a positive yearly price", s.ID, s.Pricing, s.MinYears)
		}
		if !slices.Equal(s.Scopes, []string{"domain:register"}) || !slices.Contains(s.Gates, "purchase") {
			t.Errorf("%s: scopes %v gates %v", s.ID, s.Scopes, s.Gates)
		}
	}
	if len(tlds) < 12 {
		t.Fatalf("%d TLDs (%v), want at least 12", len(tlds), tlds)
	}
	for _, want := range []string{"com", "net", "org", "dev", "app", "io", "co", "xyz", "ai"} {
		if !slices.Contains(tlds, want) {
			t.Errorf("no registration for .%s", want)
		}
	}
}

func TestDomainPriceLookup(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		name, tld string
		wantID    string
		minYears  int
		ok        bool
	}{
		{"bare tld", "com", "cloudflare/registrar:domain.com", 1, true},
		{"leading dot", ".dev", "cloudflare/registrar:domain.dev", 1, true},
		{"upper case and spaces", "  IO ", "cloudflare/registrar:domain.io", 1, true},
		{"two-year minimum", "ai", "cloudflare/registrar:domain.ai", 2, true},
		{"unlisted tld", "museum", "", 0, false},
		{"empty", "", "", 0, false},
		{"a whole domain is not a tld", "example.com", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := c.DomainPrice(tc.tld)
			if ok != tc.ok || s.ID != tc.wantID || s.MinYears != tc.minYears {
				t.Fatalf("DomainPrice(%q) = %q min %d ok %v, want %q min %d ok %v",
					tc.tld, s.ID, s.MinYears, ok, tc.wantID, tc.minYears, tc.ok)
			}
		})
	}
}

func TestEveryPriceIsIntegerMinorUnits(t *testing.T) {
	c := mustLoad(t)
	for _, s := range c.All() {
		b, err := json.Marshal(s.Pricing)
		if err != nil {
			t.Fatalf("%s: marshal pricing: %v", s.ID, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var wire struct {
			Minor    json.Number `json:"amount_minor"`
			Currency string      `json:"currency"`
			Display  string      `json:"display"`
			Interval string      `json:"interval"`
		}
		if err := dec.Decode(&wire); err != nil {
			t.Fatalf("%s: %v", s.ID, err)
		}
		n, err := wire.Minor.Int64()
		if err != nil || strings.ContainsAny(wire.Minor.String(), ".eE") || n < 0 {
			t.Errorf("%s: amount_minor %s is not a non-negative integer", s.ID, wire.Minor)
		}
		if _, ok := money.Exponent(wire.Currency); !ok {
			t.Errorf("%s: currency %q unsupported", s.ID, wire.Currency)
		}
		if want := s.Pricing.Price().String(); wire.Display != want {
			t.Errorf("%s: display %q, want %q", s.ID, wire.Display, want)
		}
		if !Interval(wire.Interval).Valid() {
			t.Errorf("%s: interval %q", s.ID, wire.Interval)
		}
	}
}

func TestPricingWireFormDerivesDisplay(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Pricing
		want string
	}{
		{"constructed", NewPricing(money.USD(1117), Year),
			`{"amount_minor":1117,"currency":"usd","display":"11.17 USD","interval":"year"}`},
		{"free", NewPricing(money.USD(0), Once),
			`{"amount_minor":0,"currency":"usd","display":"0.00 USD","interval":"once"}`},
		{"stale display cannot lie", Pricing{Minor: 500, Currency: "usd", Display: "0.01 USD", Interval: Month},
			`{"amount_minor":500,"currency":"usd","display":"5.00 USD","interval":"month"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.p)
			if err != nil || string(b) != tc.want {
				t.Fatalf("marshal = %s, %v; want %s", b, err, tc.want)
			}
		})
	}
}

func TestGet(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		name, id string
		code     fault.Code
	}{
		{"known id", "cloudflare/registrar:domain.com", ""},
		{"unknown id is not found", "cloudflare/registrar:domain.museum", fault.NotFound},
		{"ids are exact, not case-folded", "Cloudflare/Registrar:Domain.com", fault.NotFound},
		{"empty id is an invalid argument", " ", fault.InvalidArgument},
		{"huge id is refused without echoing it whole", strings.Repeat("x", 10000), fault.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.Get(tc.id)
			if tc.code == "" {
				if err != nil || s.ID != tc.id {
					t.Fatalf("Get(%q) = %q, %v", tc.id, s.ID, err)
				}
				return
			}
			if got := fault.CodeOf(err); got != tc.code {
				t.Fatalf("Get(%q) code = %q, want %q (err %v)", tc.id, got, tc.code, err)
			}
			if msg := fault.PublicOf(err); len(msg) > 400 || !strings.Contains(msg, "catalog_search") {
				t.Errorf("message should say how to search and stay short: %q", msg)
			}
		})
	}
}

func TestCallersCannotChangeTheCatalog(t *testing.T) {
	c := mustLoad(t)
	const id = "cloudflare/registrar:domain.com"
	s, _ := c.Get(id)
	s.Scopes[0] = "everything:all"
	s.Tags[0] = "hacked"
	s.ConfigSchema["additionalProperties"] = true
	s.ConfigSchema["properties"].(map[string]any)["domain"] = "gone"
	for _, r := range c.Search("domain", "") {
		r.Gates = append(r.Gates[:0], "none")
	}
	again, _ := c.Get(id)
	if again.Scopes[0] != "domain:register" || again.Tags[0] != "domain" || again.Gates[0] != "purchase" ||
		again.ConfigSchema["additionalProperties"] != false ||
		again.ConfigSchema["properties"].(map[string]any)["domain"] == "gone" {
		t.Fatalf("catalog changed through a returned copy: %+v", again)
	}
}

func TestPlanResolvesSubscriptionStartArgument(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		plan, want string
		code       fault.Code
	}{
		{"stripe/subscription:plan.starter", "stripe/subscription:plan.starter", ""},
		{"plan.team", "stripe/subscription:plan.team", ""},
		{"starter", "stripe/subscription:plan.starter", ""},
		{" STARTER ", "stripe/subscription:plan.starter", ""},
		{"cloudflare/workers:plan.paid", "cloudflare/workers:plan.paid", ""},
		{"business", "cloudflare/zone:plan.business", ""},
		{"free", "", fault.NotFound}, // free plans are not subscriptions
		{"cloudflare/registrar:domain.com", "", fault.NotFound},
		{"enterprise", "", fault.NotFound},
		{"", "", fault.InvalidArgument},
	} {
		t.Run(tc.plan, func(t *testing.T) {
			s, err := c.Plan(tc.plan)
			if tc.code != "" {
				if got := fault.CodeOf(err); got != tc.code {
					t.Fatalf("Plan(%q) code = %q, want %q", tc.plan, got, tc.code)
				}
				return
			}
			if err != nil || s.ID != tc.want || s.Tool != "subscription_start" {
				t.Fatalf("Plan(%q) = %q, %v; want %q", tc.plan, s.ID, err, tc.want)
			}
		})
	}
}

func TestSubscriptionPlansNameThemselvesInTheirSchema(t *testing.T) {
	c := mustLoad(t)
	for _, s := range c.ForTool("subscription_start") {
		plan, _ := s.ConfigSchema["properties"].(map[string]any)["plan"].(map[string]any)
		if plan["const"] != s.ID {
			t.Errorf("%s: config_schema plan.const = %v, want the id", s.ID, plan["const"])
		}
	}
}

func TestConcurrentReadsAreSafe(t *testing.T) {
	c := mustLoad(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for _, s := range c.Search("plan", "") {
					s.Tags[0] = "x"
					s.ConfigSchema["type"] = "mutated"
				}
				if s, err := c.Get("cloudflare/dns:record"); err != nil || s.ConfigSchema["type"] != "object" {
					t.Errorf("Get under concurrency: %v %v", err, s.ConfigSchema["type"])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCatalogDocumentWireForm(t *testing.T) {
	c := mustLoad(t)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PricesAsOf   string            `json:"prices_as_of"`
		PricesSource string            `json:"prices_source"`
		Services     []json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PricesAsOf != c.PricesAsOf() || doc.PricesSource == "" || len(doc.Services) != c.Len() {
		t.Fatalf("document = %s…", b[:200])
	}
	// Free services still list gates as [] (not null), so clients can range over them.
	if s, _ := c.Get("cloudflare/dns:record"); s.Gates == nil {
		t.Error("gates of a service without gates is nil")
	}
	if !bytes.Contains(b, []byte(`"gates":[]`)) {
		t.Error(`no service marshals "gates":[]`)
	}
}

func TestErrorsMatchWithErrorsIs(t *testing.T) {
	c := mustLoad(t)
	_, err := c.Get("nope/nothing")
	if !errors.Is(err, fault.New(fault.NotFound, "")) {
		t.Fatalf("errors.Is(NotFound) = false for %v", err)
	}
}
