package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

type doc = map[string]any

// validDoc is a small catalog that passes validation: a paid domain
// registration and a free DNS record. Cases below break one thing each.
func validDoc() doc {
	return doc{
		"prices_as_of":  "2026-11-01",
		"prices_source": "test prices",
		"services": []any{
			doc{
				"id": "cloudflare/registrar:domain.com", "provider": "cloudflare",
				"name": "Domain registration (.com)", "description": "Register a .com domain.",
				"tool":    "domain_register",
				"pricing": doc{"amount_minor": 1117, "currency": "usd", "interval": "year"},
				"tld":     "com", "min_years": 1,
				"scopes": []any{"domain:register"}, "gates": []any{"purchase"},
				"config_schema": doc{"type": "object", "properties": doc{}, "additionalProperties": false},
				"tags":          []any{"domain"},
			},
			doc{
				"id": "cloudflare/dns:record", "provider": "cloudflare",
				"name": "DNS record", "description": "Create or update a DNS record.",
				"tool":    "dns_upsert",
				"pricing": doc{"amount_minor": 0, "currency": "usd", "interval": "once"},
				"scopes":  []any{"dns:write"}, "gates": []any{},
				"config_schema": doc{"type": "object", "properties": doc{}, "additionalProperties": false},
				"tags":          []any{"dns"},
			},
		},
	}
}

func svc(d doc, i int) doc { return d["services"].([]any)[i].(doc) }

func encode(t *testing.T, d doc) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidDocParses(t *testing.T) {
	c, err := parse(encode(t, validDoc()))
	if err != nil {
		t.Fatalf("parse(validDoc): %v", err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
}

func TestMalformedCatalogFailsValidation(t *testing.T) {
	const domain = "cloudflare/registrar:domain.com"
	for _, tc := range []struct {
		name    string
		break_  func(d doc)
		raw     string // used instead of break_ when set
		kind    error
		mention string // the message names the offending service
	}{
		{name: "duplicate id", kind: errDuplicateID, mention: domain,
			break_: func(d doc) { svc(d, 1)["id"] = domain; svc(d, 1)["tool"] = "dns_upsert" }},
		{name: "negative price", kind: errNegativePrice, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = -1 }},
		{name: "float price like 10.5", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = 10.5 }},
		{name: "whole float written 10.0", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = json.RawMessage("10.0") }},
		{name: "exponent 1e3", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = json.RawMessage("1e3") }},
		{name: "price as a string", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = "1117" }},
		{name: "price missing", kind: errNotInteger, mention: domain,
			break_: func(d doc) { delete(svc(d, 0)["pricing"].(doc), "amount_minor") }},
		{name: "price null", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = nil }},
		{name: "price overflows int64", kind: errNotInteger, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["amount_minor"] = json.RawMessage("9223372036854775808") }},
		{name: "unknown interval", kind: errInterval, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["interval"] = "week" }},
		{name: "unknown currency", kind: errCurrency, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["currency"] = "btc" }},
		{name: "upper-case currency", kind: errCurrency, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["currency"] = "USD" }},
		{name: "unknown provider", kind: errProvider, mention: "aws/route53",
			break_: func(d doc) { svc(d, 1)["id"] = "aws/route53"; svc(d, 1)["provider"] = "aws" }},
		{name: "id of another provider", kind: errID, mention: "stripe/dns:record",
			break_: func(d doc) { svc(d, 1)["id"] = "stripe/dns:record" }},
		{name: "id not lowercase", kind: errID, mention: "Cloudflare/DNS:record",
			break_: func(d doc) { svc(d, 1)["id"] = "Cloudflare/DNS:record" }},
		{name: "missing tool", kind: errTool, mention: "cloudflare/dns:record",
			break_: func(d doc) { delete(svc(d, 1), "tool") }},
		{name: "unknown tool", kind: errTool, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["tool"] = "dns_upsertt" }},
		{name: "no scopes", kind: errScopes, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["scopes"] = []any{} }},
		{name: "malformed scope", kind: errScopes, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["scopes"] = []any{"dns"} }},
		{name: "unknown gate", kind: errGates, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["gates"] = []any{"maybe"} }},
		{name: "paid service without purchase gate", kind: errUngatedPurchase, mention: domain,
			break_: func(d doc) { svc(d, 0)["gates"] = []any{} }},
		{name: "misspelt field is not ignored", kind: errSyntax,
			break_: func(d doc) { svc(d, 1)["gate"] = []any{"purchase"} }},
		{name: "misspelt pricing field is not ignored", kind: errSyntax,
			break_: func(d doc) { svc(d, 1)["pricing"].(doc)["amount"] = 5 }},
		{name: "truncated JSON", kind: errSyntax, raw: `{"prices_as_of": "2026-11-01", "services": [`},
		{name: "trailing data", kind: errSyntax, raw: `{"prices_as_of":"2026-11-01"} {}`},
		{name: "prices_as_of not a date", kind: errHeader,
			break_: func(d doc) { d["prices_as_of"] = "November 2026" }},
		{name: "prices_source missing", kind: errHeader,
			break_: func(d doc) { delete(d, "prices_source") }},
		{name: "no services", kind: errHeader,
			break_: func(d doc) { d["services"] = []any{} }},
		{name: "registration priced per month", kind: errDomain, mention: domain,
			break_: func(d doc) { svc(d, 0)["pricing"].(doc)["interval"] = "month" }},
		{name: "registration without min_years", kind: errDomain, mention: domain,
			break_: func(d doc) { delete(svc(d, 0), "min_years") }},
		{name: "tld with a leading dot", kind: errDomain, mention: domain,
			break_: func(d doc) { svc(d, 0)["tld"] = ".com" }},
		{name: "tld on a tool that does not register", kind: errDomain, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["tld"] = "net"; svc(d, 1)["min_years"] = 1 }},
		{name: "two services register one tld", kind: errDomain, mention: "cloudflare/registrar:domain.com2",
			break_: func(d doc) {
				dup := doc{}
				for k, v := range svc(d, 0) {
					dup[k] = v
				}
				dup["id"] = "cloudflare/registrar:domain.com2"
				d["services"] = append(d["services"].([]any), dup)
			}},
		{name: "schema accepts unknown arguments", kind: errSchema, mention: "cloudflare/dns:record",
			break_: func(d doc) { delete(svc(d, 1)["config_schema"].(doc), "additionalProperties") }},
		{name: "schema is not an object schema", kind: errSchema, mention: "cloudflare/dns:record",
			break_: func(d doc) { svc(d, 1)["config_schema"] = []any{} }},
		{name: "schema missing", kind: errSchema, mention: "cloudflare/dns:record",
			break_: func(d doc) { delete(svc(d, 1), "config_schema") }},
		{name: "no tags", kind: errTags, mention: "cloudflare/dns:record",
			break_: func(d doc) { delete(svc(d, 1), "tags") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.raw != "" {
				data = []byte(tc.raw)
			} else {
				d := validDoc()
				tc.break_(d)
				data = encode(t, d)
			}
			c, err := parse(data)
			if err == nil {
				t.Fatalf("parse accepted a broken catalog (%d services)", c.Len())
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error kind = %v, want %v", err, tc.kind)
			}
			if got := fault.CodeOf(err); got != fault.Internal {
				t.Errorf("code = %q, want internal: a broken embedded catalog is a build bug", got)
			}
			msg := fault.PublicOf(err)
			if !strings.HasPrefix(msg, "catalog: ") || (tc.mention != "" && !strings.Contains(msg, `"`+tc.mention+`"`)) {
				t.Errorf("message %q should start with the package and name %q", msg, tc.mention)
			}
		})
	}
}
