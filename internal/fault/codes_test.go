package fault_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

var update = flag.Bool("update", false, "rewrite docs/error-codes.md from the registry")

// sharedCodes are the codes declared in more than one package on purpose:
// the same decision, taken in each place. Any other code declared twice is
// a collision (two meanings for one string) and fails.
var sharedCodes = map[string][]string{
	// One decision, one for each provider adapter.
	"provider_error":   {"tools/cloudflare", "tools/stripe"},
	"provider_refused": {"tools/cloudflare", "tools/stripe"},
	// fault.BillingRequired is account_connect's; tools.BillingRequired
	// subscription_start's. Same meaning: no payment method on file yet.
	"billing_required": {"internal/fault", "tools"},
}

const modulePath = "github.com/tollgate-dev/tollgate"

func rel(pkg string) string { return strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/") }

// TestEveryCodeIsRegistered is the registry's guarantee: every code the
// module's source declares or writes has an entry, every entry has a code
// in the source, and a code means one thing.
func TestEveryCodeIsRegistered(t *testing.T) {
	s := scanModule(t)
	registered := map[string]bool{}
	for _, spec := range fault.Registry() {
		registered[string(spec.Code)] = true
	}
	found := map[string]bool{}
	for _, code := range s.codes() {
		found[code] = true
		if !registered[code] {
			t.Errorf("code %q (%s) has no entry in internal/fault/registry.go: add one with its HTTP status, surfaces, retryability and meaning",
				code, where(s, code))
		}
	}
	for code := range registered {
		if !found[code] {
			t.Errorf("registry entry %q is declared nowhere in the module's source: remove it, or declare the code where it is decided", code)
		}
	}

	// A code written as a literal must also be a declared constant, so it
	// has a name, a doc comment and a home.
	for code, lits := range s.Literals {
		if len(s.Decls[code]) == 0 {
			t.Errorf("code %q is only ever written as a literal (%s): declare it as a constant where it is decided", code, lits[0].Pos)
		}
	}

	// One string, one meaning: a second declaration of a code in another
	// package is a collision unless listed in sharedCodes.
	for code, decls := range s.Decls {
		var pkgs []string
		for _, d := range decls {
			pkgs = append(pkgs, rel(d.Pkg))
		}
		slices.Sort(pkgs)
		pkgs = slices.Compact(pkgs)
		want := sharedCodes[code]
		switch {
		case len(pkgs) > 1 && !slices.Equal(pkgs, want):
			t.Errorf("code %q is declared in %s: one string, one meaning. Use one constant, or if it is the same decision list it in sharedCodes",
				code, where(s, code))
		case len(pkgs) == 1 && want != nil:
			t.Errorf("sharedCodes lists %q in %v, but only %s declares it: update sharedCodes", code, want, pkgs[0])
		}
		for _, d := range decls {
			if s.Uses[d.Pkg+"."+d.Name] == 0 {
				t.Errorf("%s.%s (%q, %s) is declared but never used: remove it and its registry entry, or use it", rel(d.Pkg), d.Name, code, d.Pos)
			}
		}
	}
}

// TestErrorCodesDoc keeps docs/error-codes.md the registry's table.
// Refresh it with: go test ./internal/fault -run TestErrorCodesDoc -update
func TestErrorCodesDoc(t *testing.T) {
	s := scanModule(t)
	got := errorCodesDoc(s)
	path := filepath.Join(moduleRoot(t), "docs", "error-codes.md")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; create it with: go test ./internal/fault -run TestErrorCodesDoc -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/error-codes.md is not the registry's table; refresh it with: go test ./internal/fault -run TestErrorCodesDoc -update")
	}
}

func errorCodesDoc(s *scan) []byte {
	var b bytes.Buffer
	b.WriteString(`# Error codes

<!-- Generated from internal/fault/registry.go by
     go test ./internal/fault -run TestErrorCodesDoc -update
     Do not edit by hand. -->

Every refusal tollgate makes carries a stable code. A code is a contract with clients and never
changes meaning. Codes are declared where they are decided (the "Declared in" column) and listed,
with their forms at each edge, in one registry: ` + "`fault.Registry()`" + ` in ` + "`internal/fault`" + `. A test
type-checks the module's source and fails when a code has no entry, an entry has no code, or one
string is declared with two meanings.

## How a code reaches a caller

- **Tool error.** A ` + "`tools/call`" + ` result with ` + "`isError: true`" + ` and structured content
  ` + "`{\"error\": {\"code\": \"<code>\", \"message\": \"…\", \"provider_called\": false}}`" + ` (` + "`tools.Refuse`" + `), plus
  ` + "`details`" + ` where the error has some (the provider's answer, an approval's id and URL). The JSON-RPC
  call itself succeeds; the message says what happened, what to do, and whether anything was charged.
- **HTTP.** A refused HTTP request, with the status in the table. ` + "`/mcp`" + ` answers RFC 6750 challenges
  (` + "`WWW-Authenticate: Bearer … error=\"invalid_token\"`" + ` or ` + "`\"insufficient_scope\"`" + `) and a JSON body
  ` + "`{\"error\", \"error_description\"}`" + `; the OAuth endpoints (` + "`/oauth/token`" + `, ` + "`/oauth/introspect`" + `,
  ` + "`/oauth/revoke`" + `) answer RFC 6749 §5.2 errors, so there most refusals are 400 with an OAuth error code;
  the approvals pages answer an HTML page with the status. A note after a status says how an edge
  words the refusal when it does not send the code itself, or which edge answers another status. A status in parentheses is the one the
  code would have: today it never refuses an HTTP request.
- **CLI.** An operator command (` + "`tollgate serve`" + `, ` + "`stdio`" + `, ` + "`approvals`" + `, ` + "`spend`" + `, ` + "`session`" + `) fails with
  the public message.
- **Retryable.** The same call, repeated unchanged later, can succeed without anything else being
  called first. The message says when, and when a retry would not be safe.

| Code | HTTP | Tool error | CLI | Retryable | Meaning | Declared in |
|------|------|------------|-----|-----------|---------|-------------|
`)
	yes := func(v bool) string {
		if v {
			return "yes"
		}
		return "—"
	}
	for _, spec := range fault.Registry() {
		status := fmt.Sprintf("(%d)", spec.HTTP)
		if spec.Surfaces.Has(fault.SurfaceHTTP) {
			status = fmt.Sprint(spec.HTTP)
			if spec.HTTPNote != "" {
				status += " — " + spec.HTTPNote
			}
		}
		meaning := spec.Meaning
		if spec.Surfaces == 0 {
			meaning += " (It reaches no caller: it is only logged.)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", spec.Code, cell(status),
			yes(spec.Surfaces.Has(fault.SurfaceTool)), yes(spec.Surfaces.Has(fault.SurfaceCLI)), yes(spec.Retryable),
			cell(meaning), declaredIn(s, string(spec.Code)))
	}
	return b.Bytes()
}

// declaredIn lists the packages declaring code, as constants.
func declaredIn(s *scan, code string) string {
	var out []string
	for _, d := range s.Decls[code] {
		out = append(out, "`"+rel(d.Pkg)+"."+d.Name+"`")
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}

func where(s *scan, code string) string {
	var out []string
	for _, d := range s.Decls[code] {
		out = append(out, rel(d.Pkg)+"."+d.Name+" at "+d.Pos)
	}
	for _, l := range s.Literals[code] {
		out = append(out, "a literal at "+l.Pos)
	}
	return strings.Join(out, ", ")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// TestFaultIsALeaf: every package may import fault, so fault imports no
// other tollgate package (the registry names codes by their strings).
func TestFaultIsALeaf(t *testing.T) {
	out, err := exec.Command(goTool(), "list", "-deps", "-f", "{{.ImportPath}}", faultPath).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, modulePath+"/") && p != faultPath {
			t.Errorf("package fault imports %s; it must stay a leaf", p)
		}
	}
}
