package rediskey

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The registry itself: every family is complete, named once, and no key
// can belong to two families (so no two stores share one).
func TestFamiliesAreDisjoint(t *testing.T) {
	fams := Families()
	names := map[string]bool{}
	for _, f := range fams {
		switch {
		case f.Name == "" || f.Prefix == "" || f.Owner == "" || f.Store == "" || f.Type == "" || f.About == "":
			t.Errorf("family %+v: every field is required", f)
		case f.Scope != Global && f.Scope != Principal:
			t.Errorf("family %s: scope %v", f.Name, f.Scope)
		case !strings.HasPrefix(f.Owner, module):
			t.Errorf("family %s: owner %s is not a package of the module", f.Name, f.Owner)
		case names[f.Name]:
			t.Errorf("family %s is listed twice", f.Name)
		}
		names[f.Name] = true
		// A global key starting "{" would read as a principal's.
		if f.Scope == Global && (strings.HasPrefix(f.Prefix, "{") || strings.HasPrefix(f.Prefix, "}")) {
			t.Errorf("family %s: a global prefix must not open a hash tag", f.Name)
		}
	}
	for _, a := range fams {
		for _, b := range fams {
			if a.Name == b.Name || a.Scope != b.Scope {
				continue
			}
			// Stricter than Lookup needs: an exact family's key may not
			// start another's either, so the layouts stay readable.
			if strings.HasPrefix(b.Prefix, a.Prefix) {
				t.Errorf("family %s (%s) overlaps %s (%s): one key would belong to both stores, %s.%s and %s.%s",
					a.Name, a.Pattern(), b.Name, b.Pattern(), a.Owner, a.Store, b.Owner, b.Store)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string // want "" for no family
	}{
		{"session record", "tg:{user:alice@example.com}:sess:s1", "sessions.session"},
		{"principal index", "tg:{user:alice@example.com}:idx", "sessions.index"},
		{"session by id", "tg:sid:s1", "sessions.owner"},
		{"every session", "tg:sessidx", "sessions.all"},
		{"audit stream, fixed tag", "tg:audit:{chain}", "sessions.audit"},
		{"audit head", "tg:audit:{chain}:head", "sessions.audit"},
		{"approval record", "tg:{P}:approval:ap1", "human.approval"},
		{"approvals index beside the record prefix", "tg:{P}:approvals", "human.approvals"},
		{"approval owner, global", "tg:approval:ap1", "human.approval-owner"},
		{"hold beside holds", "tg:{P}:hold:h1", "spend.hold"},
		{"open holds", "tg:{P}:holds:open", "spend.open"},
		{"loop cooldown", "tg:{P}:loop:cool:dns_upsert:abc", "loopguard.calls"},
		{"escaped principal", "tg:{user:a%7Db}:links", "links.links"},
		{"mcp session owner", "tg:mcpsess:abc", "mcpsession.owner"},
		{"flow record", "tg:flow:ap1", "flowstate.flow"},
		{"shared secret", "tg:secret:approvals", "sharedsecret.secret"},

		{"exact family with a suffix", "tg:{P}:approvalsX", ""},
		{"exact global with a suffix", "tg:sessidx:1", ""},
		{"exact principal key as a prefix", "tg:{P}:idxes", ""},
		{"principal family without the tag", "tg:links", ""},
		{"principal prefix without the tag", "tg:sess:s1", ""},
		{"global family under a tag", "tg:{P}:sid:s1", ""},
		{"secret under a principal", "tg:{P}:secret:approvals", ""},
		{"unescaped principal closes the tag early", "tg:{user:a}{b}:links", ""},
		{"empty principal", "tg:{}:links", ""},
		{"unclosed tag", "tg:{user:links", ""},
		{"tag not followed by a colon", "tg:{P}links", ""},
		{"another root", "xg:sid:s1", ""},
		{"root without its colon", "tg-sid:s1", ""},
		{"empty key", "", ""},
	} {
		f, ok := Lookup(tc.key)
		if ok != (tc.want != "") || f.Name != tc.want {
			t.Errorf("%s: Lookup(%q) = %q, %v; want %q", tc.name, tc.key, f.Name, ok, tc.want)
		}
	}
}

// Every owner is a package of the module that declares its store type.
func TestOwnersDeclareTheirStores(t *testing.T) {
	root := moduleRoot(t)
	for _, f := range Families() {
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(f.Owner, module)))
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("family %s: owner %s: %v", f.Name, f.Owner, err)
			continue
		}
		found := false
		for _, p := range pkgs {
			for _, file := range p.Files {
				found = found || declaresType(file, f.Store)
			}
		}
		if !found {
			t.Errorf("family %s: %s declares no type %s", f.Name, f.Owner, f.Store)
		}
	}
}

func declaresType(file *ast.File, name string) bool {
	for _, d := range file.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
			for _, s := range g.Specs {
				if s.(*ast.TypeSpec).Name.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// Every "tg:…" string literal in the module's non-test Go source names a
// registered family and sits in that family's owning package, and so does
// every literal that spells a family after a configurable root (":sid:",
// "}:links"): nobody reads or writes another store's keys by building
// them. The keys a store builds from its Config.Prefix are checked at run
// time instead (TestStoresWriteOnlyTheirFamilies).
func TestKeyLiteralsSitWithTheirOwner(t *testing.T) {
	root := moduleRoot(t)
	checked := 0
	for _, file := range sourceFiles(t, root) {
		pkg := module + filepath.ToSlash(filepath.Dir(file.rel))
		lits := keyLiterals(file.ast)
		checked += len(lits)
		for _, p := range misplaced(pkg, lits) {
			t.Errorf("%s:%d: %s", file.rel, file.fset.Position(p.pos).Line, p.why)
		}
	}
	if checked == 0 {
		t.Fatal("no key literals found: the scan is broken")
	}
}

// The scan itself catches what it is for.
func TestKeyLiteralScan(t *testing.T) {
	for _, tc := range []struct {
		name, pkg, src string
		bad            int
	}{
		{"owner builds its key", "internal/mcpsession", `func key(id string) string { return "tg:mcpsess:" + id }`, 0},
		{"owner builds a principal key", "internal/links", `func key(p string) string { return "tg:{" + esc(p) + "}:links" }`, 0},
		{"owner's root-relative literal", "sessions", `func (k keyspace) sid(s string) string { return k.prefix + ":sid:" + s }`, 0},
		{"not a key", "cmd/tollgate", `var s = "tg is short for tollgate: " + x`, 0},
		{"raw key in the composition root", "compose", `func flowKey(a string) string { return "tg:flow:" + a }`, 1},
		{"glob over another store's keys", "bench", `var g = "tg:{*}:sess:*"`, 1},
		{"another store's exact key", "bench", `var k = "tg:sessidx"`, 1},
		{"prefix of no family", "bench", `var k = "tg:"`, 1},
		{"unregistered family", "compose", `var k = "tg:cache:" + id`, 1},
		{"scan after another store's root", "cmd/tollgate", `var p = human.DefaultPrefix + ":approval:"`, 1},
		{"another store's principal suffix", "cmd/tollgate", `var k = prefix + ":{" + p + "}:links"`, 1},
		{"parenthesised chain", "compose", `var k = ("tg:secret:" + (name))`, 1},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", "package x\n"+tc.src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := misplaced(module+tc.pkg, keyLiterals(f)); len(got) != tc.bad {
			t.Errorf("%s: %d findings %v, want %d", tc.name, len(got), got, tc.bad)
		}
	}
}

type finding struct {
	pos token.Pos
	why string
}

// misplaced returns the literals of package pkg that name no family or
// another package's.
func misplaced(pkg string, lits []keyLiteral) []finding {
	var out []finding
	for _, lit := range lits {
		if lit.key != "" {
			f, ok := Lookup(lit.key)
			switch {
			case !ok:
				out = append(out, finding{lit.pos, fmt.Sprintf("%q names no registered key family; add it to Families with its owning store", lit.text)})
			case f.Owner != pkg:
				out = append(out, finding{lit.pos, fmt.Sprintf("%q is a key of family %s, owned by %s.%s; go through that store's API", lit.text, f.Name, f.Owner, f.Store)})
			}
			continue
		}
		for _, f := range Families() {
			lead := ":"
			if f.Scope == Principal {
				lead = "}:"
			}
			if strings.HasPrefix(lit.text, lead+f.Prefix) && f.Owner != pkg {
				out = append(out, finding{lit.pos, fmt.Sprintf("%q spells family %s (%s), owned by %s.%s; go through that store's API", lit.text, f.Name, f.Pattern(), f.Owner, f.Store)})
			}
		}
	}
	return out
}

type sourceFile struct {
	rel  string // path from the module root
	fset *token.FileSet
	ast  *ast.File
}

// sourceFiles parses every non-test Go file of the module, whatever its
// build tags.
func sourceFiles(t *testing.T, root string) []sourceFile {
	t.Helper()
	var out []sourceFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, sourceFile{rel: rel, fset: fset, ast: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keyLiteral is a string literal that looks like part of a key: text is
// the literal; key, for a literal starting "tg:", is a sample of the key
// the expression it starts builds, with every non-literal operand of its
// "+" chain standing for "x".
type keyLiteral struct {
	pos       token.Pos
	text, key string
}

func keyLiterals(file *ast.File) []keyLiteral {
	// Operands of a longer "+" chain are reached from its top.
	inner := map[ast.Expr]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryExpr); ok && b.Op == token.ADD {
			for _, e := range []ast.Expr{b.X, b.Y} {
				if c, ok := unparen(e).(*ast.BinaryExpr); ok && c.Op == token.ADD {
					inner[c] = true
				}
			}
		}
		return true
	})
	var out []keyLiteral
	seen := map[*ast.BasicLit]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryExpr); ok && b.Op == token.ADD && !inner[b] {
			ops := operands(b)
			if first, ok := stringLit(ops[0]); ok && strings.HasPrefix(first, Root+":") {
				var key strings.Builder
				for _, op := range ops {
					if s, ok := stringLit(op); ok {
						key.WriteString(s)
					} else {
						key.WriteString("x")
					}
				}
				lit := unparen(ops[0]).(*ast.BasicLit)
				seen[lit] = true
				out = append(out, keyLiteral{pos: lit.Pos(), text: first, key: key.String()})
			}
		}
		lit, ok := n.(*ast.BasicLit)
		if !ok || seen[lit] {
			return true
		}
		s, ok := stringLit(lit)
		switch {
		case !ok:
		case strings.HasPrefix(s, Root+":"):
			out = append(out, keyLiteral{pos: lit.Pos(), text: s, key: s})
		case strings.HasPrefix(s, ":") || strings.HasPrefix(s, "}:"):
			out = append(out, keyLiteral{pos: lit.Pos(), text: s})
		}
		return true
	})
	return out
}

// operands flattens a "+" chain, left to right.
func operands(e ast.Expr) []ast.Expr {
	if b, ok := unparen(e).(*ast.BinaryExpr); ok && b.Op == token.ADD {
		return append(operands(b.X), operands(b.Y)...)
	}
	return []ast.Expr{e}
}

func unparen(e ast.Expr) ast.Expr {
	for {
		p, ok := e.(*ast.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := unparen(e).(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
