//go:build !nosandbox

package compose_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestToolSnapshots pins every tool's public contract — name, description,
// annotations, input and output schema — and its scopes, gates and whether
// it is paid: a change to any of them shows up in review as a diff of
// testdata/tools.golden.json (refresh with -update).
func TestToolSnapshots(t *testing.T) {
	a, _ := newApp(t)
	type snap struct {
		Def      any      `json:"definition"`
		Scopes   []string `json:"scopes"`
		Gates    []string `json:"gates,omitempty"`
		Paid     bool     `json:"paid,omitempty"`
		Provider string   `json:"provider,omitempty"`
	}
	out := map[string]snap{}
	for _, tool := range a.Tools {
		out[tool.Name()] = snap{Def: tool.Definition(), Scopes: tool.Scopes, Gates: tool.Gates, Paid: tool.Paid, Provider: tool.Provider}
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "tools.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestToolSnapshots -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("tool definitions changed; review the diff and run go test ./compose -run TestToolSnapshots -update")
	}
	for name, s := range out {
		def := s.Def
		b, _ := json.Marshal(def)
		var m struct {
			Annotations map[string]any `json:"annotations"`
		}
		_ = json.Unmarshal(b, &m)
		ro, _ := m.Annotations["readOnlyHint"].(bool)
		if s.Paid && ro {
			t.Errorf("%s is paid but marked read-only", name)
		}
		if len(s.Scopes) == 0 && name != "whoami" {
			t.Errorf("%s needs no scope", name)
		}
	}
}
