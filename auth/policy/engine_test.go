package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSandboxLoads(t *testing.T) {
	e := sandbox(t)
	if e.Name() != "sandbox.cedar" {
		t.Errorf("Name() = %q", e.Name())
	}
	if !strings.HasPrefix(e.Digest(), "sha256:") || len(e.Digest()) != len("sha256:")+64 {
		t.Errorf("Digest() = %q", e.Digest())
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		public []string // parts the operator needs to find and fix it
	}{
		{"syntax error names file, line and column",
			"@id(\"ok\")\npermit (principal, action, resource);\n\nforbid (principal action, resource);\n",
			[]string{"syntax error at bad.cedar:4:25"}},
		{"unterminated policy",
			"permit (principal, action, resource)", []string{"bad.cedar:1:"}},
		{"bad string escape",
			`permit (principal, action, resource) when { context.x == "\q" };`, []string{"bad.cedar:1:"}},
		{"duplicate @id",
			`@id("a") forbid (principal, action, resource); @id("a") forbid (principal, action, resource);`,
			[]string{`"a"`, "bad.cedar:1:48"}},
		{"@id colliding with a positional id",
			`@id("policy1") forbid (principal, action, resource); forbid (principal, action, resource);`,
			[]string{`"policy1"`}},
		{"empty @id",
			`@id("") forbid (principal, action, resource);`, []string{"@id"}},
		{"permit for every action would allow impersonating anyone",
			`@id("everything") permit (principal, action, resource);`, []string{`"everything"`, "impersonate"}},
		{"impersonation granted to every principal",
			`permit (principal, action == Tollgate::Action::"impersonate", resource == Tollgate::Agent::"spiffe://example.org/agent/b");`,
			[]string{"impersonate"}},
		{"impersonation of every agent",
			`permit (principal == Tollgate::Agent::"spiffe://example.org/agent/a", action in [Tollgate::Action::"act_for", Tollgate::Action::"impersonate"], resource is Tollgate::Agent);`,
			[]string{"impersonate"}},
		{"impersonation pair hidden in a condition",
			`permit (principal, action == Tollgate::Action::"impersonate", resource)
			when { principal == Tollgate::Agent::"spiffe://example.org/agent/a" && resource == Tollgate::Agent::"spiffe://example.org/agent/b" };`,
			[]string{"impersonate"}},
		{"misspelt action in a forbid",
			`@id("no-imp") forbid (principal, action == Tollgate::Action::"impersonat", resource);`,
			[]string{`"no-imp"`, `impersonat`, "bad.cedar:1:1"}},
		{"entity type outside the namespace",
			`permit (principal is Agent, action, resource);`, []string{"Agent"}},
		{"misspelt entity type in a condition",
			`permit (principal, action, resource) when { resource is Tollgate::Usr };`, []string{"Tollgate::Usr"}},
		{"unknown entity in a set literal",
			`permit (principal, action, resource) when { [Tollgate::Role::"admin"].contains(resource) };`,
			[]string{"Tollgate::Role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse("bad.cedar", []byte(tt.src))
			if e != nil {
				t.Errorf("Parse returned an engine with error %v", err)
			}
			wantCode(t, err, InvalidPolicy)
			publicHas(t, err, tt.public...)
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{"empty source", ""},
		{"comments only", "// nothing yet\n"},
		{"all four actions", `forbid (principal, action in [Tollgate::Action::"act_for",
			Tollgate::Action::"impersonate", Tollgate::Action::"use_scope", Tollgate::Action::"spend"], resource);`},
		{"record literal with type and id keys", `permit (principal, action == Tollgate::Action::"act_for", resource)
			when { {type: "x", id: "y"}.id == "y" };`},
		{"forbid for every action", `forbid (principal, action, resource);`},
		{"pinned pair for every action", `permit (principal == Tollgate::Agent::"spiffe://example.org/agent/a",
			action, resource == Tollgate::Agent::"spiffe://example.org/agent/b");`},
		{"pinned pair in an action list", `permit (principal == Tollgate::Agent::"spiffe://example.org/agent/a",
			action in [Tollgate::Action::"act_for", Tollgate::Action::"impersonate"],
			resource == Tollgate::Agent::"spiffe://example.org/agent/b");`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("ok.cedar", []byte(tt.src)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.cedar")
	if err := os.WriteFile(big, []byte(strings.Repeat("/", maxPolicyBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		public []string
	}{
		{"missing file", filepath.Join(dir, "nope.cedar"), []string{"nope.cedar"}},
		{"oversized file", big, []string{"big.cedar"}},
		{"syntax error names the file path", "testdata/broken.cedar", []string{"testdata/broken.cedar:5:25"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(tt.path)
			wantCode(t, err, InvalidPolicy)
			publicHas(t, err, tt.public...)
		})
	}
}
