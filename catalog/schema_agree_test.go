package catalog_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/tools"
)

// publishedInputs are the input schemas clients see, by tool name. The
// catalog is not needed to describe a tool, so none is given.
func publishedInputs(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	// Built without dependencies: a definition does not need them.
	all := []tools.Tool{tools.Whoami(time.Now), tools.CatalogSearch(nil), tools.CatalogGet(nil), tools.PlanQuote(tools.QuoteConfig{}),
		tools.SpendStatus(nil), tools.DomainCheck(), tools.DomainRegister(tools.RegisterConfig{}), tools.DNSList(), tools.DNSUpsert(),
		tools.DNSDelete(), tools.SSLConfigure(), tools.APITokenCreate(nil, time.Now), tools.BillingSetup(nil),
		tools.AccountConnect(tools.AccountConfig{}), tools.SubscriptionStart(tools.SubscriptionConfig{}),
		tools.DeployPreview(tools.DeployConfig{}), tools.DeployPromote()}
	for _, tool := range all {
		def := tool.Definition()
		var s map[string]any
		if err := json.Unmarshal(def.RawInputSchema, &s); err != nil {
			t.Fatalf("%s: %v", def.Name, err)
		}
		out[def.Name] = s
	}
	return out
}

// toolOnly are arguments of the MCP protocol around a tool, not of the
// service it configures: the approval a client without elicitation
// retries with.
var toolOnly = map[string]bool{"approval_id": true}

// knownGaps are services whose tool cannot provision them as the catalog
// describes yet; each must still disagree (the test says when to remove it).
var knownGaps = map[string]string{
	"cloudflare/zone:plan.pro":      "subscription_start starts Stripe plans only; no tool upgrades a zone's Cloudflare plan",
	"cloudflare/zone:plan.business": "subscription_start starts Stripe plans only; no tool upgrades a zone's Cloudflare plan",
}

// lower and upper bounds may be narrower in the catalog for one service
// (.ai registers for 2 years or more): a tighter bound still agrees.
var (
	lowerBounds = map[string]bool{"minimum": true, "minLength": true, "minItems": true}
	upperBounds = map[string]bool{"maximum": true, "maxLength": true, "maxItems": true}
)

// constraint keywords must be the same on both sides; the catalog may
// narrow a field further per service with pattern, const or default (the
// .pro registration's domain pattern, a plan's own id).
var constraints = []string{"type", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "enum", "items"}

// TestConfigSchemasAgreeWithToolSchemas: every catalog service's
// config_schema names exactly the arguments of its tool, field by field
// with the same type, bounds, choices and required set, so an agent that
// reads catalog_get and calls the tool is told one thing.
func TestConfigSchemasAgreeWithToolSchemas(t *testing.T) {
	c, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	inputs := publishedInputs(t)
	checked := 0
	for _, svc := range c.All() {
		tool, ok := inputs[svc.Tool]
		if !ok {
			t.Errorf("%s: its tool %q does not exist", svc.ID, svc.Tool)
			continue
		}
		if why, ok := knownGaps[svc.ID]; ok {
			if len(disagreements(svc.ConfigSchema, tool)) == 0 {
				t.Errorf("%s now agrees with %s: remove it from knownGaps (%s)", svc.ID, svc.Tool, why)
			}
			continue
		}
		for _, msg := range disagreements(svc.ConfigSchema, tool) {
			t.Errorf("%s (%s): %s", svc.ID, svc.Tool, msg)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no service was compared")
	}
}

func disagreements(cfg, tool map[string]any) []string {
	var out []string
	cp, _ := cfg["properties"].(map[string]any)
	tp, _ := tool["properties"].(map[string]any)
	for name := range tp {
		if _, ok := cp[name]; !ok && !toolOnly[name] {
			out = append(out, fmt.Sprintf("the tool takes %q, the config_schema does not", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cp)) {
		tf, ok := tp[name].(map[string]any)
		if !ok {
			out = append(out, fmt.Sprintf("the config_schema has %q, the tool does not take it", name))
			continue
		}
		cf, _ := cp[name].(map[string]any)
		for _, k := range constraints {
			cv, tv := norm(cf[k]), norm(tf[k])
			if k == "enum" && cv == nil && tv != nil && cf["const"] != nil {
				if slices.Contains(tv.([]any), norm(cf["const"])) {
					continue // one of the tool's choices, fixed for this service
				}
			}
			if c, t, ok := numbers(cv, tv); ok && (lowerBounds[k] && c >= t || upperBounds[k] && c <= t) {
				continue
			}
			if !reflect.DeepEqual(cv, tv) {
				out = append(out, fmt.Sprintf("%s.%s: config_schema %v, tool %v", name, k, cv, tv))
			}
		}
	}
	if cr, tr := strs(cfg["required"]), strs(tool["required"]); !slices.Equal(cr, tr) {
		out = append(out, fmt.Sprintf("required: config_schema %v, tool %v", cr, tr))
	}
	return out
}

// norm makes numbers comparable (float64 from JSON, int64 from Go).
func norm(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func numbers(a, b any) (float64, float64, bool) {
	x, ok1 := a.(float64)
	y, ok2 := b.(float64)
	return x, y, ok1 && ok2
}

func strs(v any) []string {
	var out []string
	xs, _ := norm(v).([]any)
	for _, x := range xs {
		out = append(out, fmt.Sprint(x))
	}
	slices.Sort(out)
	return out
}
