package tools

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateSchemas = flag.Bool("update", false, "rewrite testdata/schemas/*.json")

// everyTool builds every tool without dependencies: a definition needs none.
func everyTool() []Tool {
	return []Tool{Whoami(time.Now), CatalogSearch(nil), CatalogGet(nil), PlanQuote(QuoteConfig{}), SpendStatus(nil),
		DomainCheck(), DomainRegister(RegisterConfig{}), DNSList(), DNSUpsert(), DNSDelete(), SSLConfigure(),
		APITokenCreate(nil, time.Now), BillingSetup(nil), AccountConnect(AccountConfig{}),
		SubscriptionStart(SubscriptionConfig{}), DeployPreview(DeployConfig{}), DeployPromote()}
}

// TestToolSchemaSnapshots pins each tool's published definition (what
// tools/list shows: schemas, annotations, _meta) in
// testdata/schemas/<tool>.json; refresh with go test ./tools -run
// TestToolSchemaSnapshots -update and review the diff.
func TestToolSchemaSnapshots(t *testing.T) {
	for _, tool := range everyTool() {
		t.Run(tool.Name(), func(t *testing.T) {
			got, err := json.MarshalIndent(tool.Definition(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "schemas", tool.Name()+".json")
			if *updateSchemas {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tools -run TestToolSchemaSnapshots -update)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("%s changed; review the diff and run go test ./tools -run TestToolSchemaSnapshots -update", path)
			}
		})
	}
}

// TestSchemasArePortable: no ["null", T] type unions and no schema without
// a single keyword, in any tool's input or output schema: the spellings
// MCP Inspector's strict mode warns about, which single-type dialects
// (some model providers' function declarations) reject.
func TestSchemasArePortable(t *testing.T) {
	for _, tool := range everyTool() {
		def := tool.Definition()
		for _, part := range []struct {
			name string
			raw  []byte
		}{{"inputSchema", def.RawInputSchema}, {"outputSchema", def.RawOutputSchema}} {
			if part.raw == nil {
				continue
			}
			var v any
			if err := json.Unmarshal(part.raw, &v); err != nil {
				t.Fatalf("%s %s: %v", def.Name, part.name, err)
			}
			for _, p := range unportable(v, part.name) {
				t.Errorf("%s: %s", def.Name, p)
			}
		}
	}
}

// annotationOnly are keywords that say nothing about the value.
var annotationOnly = map[string]bool{"description": true, "title": true, "default": true, "examples": true, "$comment": true}

func unportable(v any, path string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	if _, ok := m["type"].([]any); ok {
		out = append(out, fmt.Sprintf("%s: type is a list %v", path, m["type"]))
	}
	keywords := 0
	for k := range m {
		if !annotationOnly[k] {
			keywords++
		}
	}
	if keywords == 0 {
		out = append(out, path+": no validation keyword at all")
	}
	for _, k := range schemaKeys {
		if props, ok := m[k].(map[string]any); ok {
			for name, sub := range props {
				out = append(out, unportable(sub, path+"."+k+"."+name)...)
			}
		}
	}
	for _, k := range schemaOne {
		if sub, ok := m[k].(map[string]any); ok {
			out = append(out, unportable(sub, path+"."+k)...)
		}
	}
	for _, k := range schemaLists {
		if subs, ok := m[k].([]any); ok {
			for i, sub := range subs {
				out = append(out, unportable(sub, fmt.Sprintf("%s.%s[%d]", path, k, i))...)
			}
		}
	}
	return out
}
