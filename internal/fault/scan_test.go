package fault_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
)

// faultPath is the import path of package fault, whose Code type the scan
// looks for.
const faultPath = "github.com/tollgate-dev/tollgate/internal/fault"

// registryFile is the file whose entries are the registry itself; its
// literals are not emissions.
const registryFile = "registry.go"

// scanTags are the build tag sets the scan type-checks the module under:
// the default (sandbox) build and the production build.
var scanTags = []string{"", "nosandbox"}

// site is one place in the module's non-test Go source where a code is
// declared as a constant or written as a literal.
type site struct {
	Pkg  string // import path
	Name string // the constant's name; "" for a literal
	Pos  string // file:line relative to the module root
}

// scan is what the scan found: every code with the places it is declared
// or written, and how many times each declared constant is used.
type scan struct {
	Decls    map[string][]site // code → constants declaring it
	Literals map[string][]site // code → literals of type Code outside a const declaration
	Uses     map[string]int    // "pkgpath.Name" → uses outside its declaration
}

func (s *scan) codes() []string {
	seen := map[string]bool{}
	for c := range s.Decls {
		seen[c] = true
	}
	for c := range s.Literals {
		seen[c] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// listedPackage is the part of `go list -json` the scan needs.
type listedPackage struct {
	Dir        string
	ImportPath string
	Export     string
	GoFiles    []string
	CgoFiles   []string
	Standard   bool
	Module     *struct{ Path, Dir string }
	Error      *struct{ Err string }
}

// scanModule type-checks every non-test package of the module from source
// (its dependencies from the compiler's export data, which `go list
// -export` builds) and finds every constant expression of type fault.Code.
// Type-checking, rather than matching text, also finds an untyped literal
// that becomes a code (fault.New("x", …), ErrorBody{Code: "x"}). Test files
// are not scanned: what they declare is never emitted. Files for other
// operating systems than the test's are not scanned either.
func scanModule(t *testing.T) *scan {
	t.Helper()
	root := moduleRoot(t)
	scanned.Do(func() { scanned.s, scanned.err = loadScan(root) })
	if scanned.err != nil {
		t.Fatal(scanned.err)
	}
	return scanned.s
}

// scanned is the scan, made once for all the tests of the binary.
var scanned struct {
	sync.Once
	s   *scan
	err error
}

func loadScan(root string) (*scan, error) {
	s := &scan{Decls: map[string][]site{}, Literals: map[string][]site{}, Uses: map[string]int{}}
	seenSite := map[string]bool{}
	for _, tags := range scanTags {
		pkgs, err := goList(root, tags)
		if err != nil {
			return nil, err
		}
		exports := map[string]string{}
		for _, p := range pkgs {
			exports[p.ImportPath] = p.Export
		}
		fset := token.NewFileSet()
		imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
			f, ok := exports[path]
			if !ok || f == "" {
				return nil, fmt.Errorf("no export data for %s", path)
			}
			return os.Open(f)
		})
		for _, p := range pkgs {
			if p.Standard || p.Module == nil || p.Module.Dir != root {
				continue
			}
			if len(p.CgoFiles) > 0 {
				return nil, fmt.Errorf("%s has cgo files; the scan does not type-check cgo", p.ImportPath)
			}
			var files []*ast.File
			for _, name := range p.GoFiles {
				if p.ImportPath == faultPath && name == registryFile {
					continue
				}
				f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
				if err != nil {
					return nil, err
				}
				files = append(files, f)
			}
			info := &types.Info{
				Types: map[ast.Expr]types.TypeAndValue{},
				Defs:  map[*ast.Ident]types.Object{},
				Uses:  map[*ast.Ident]types.Object{},
			}
			conf := types.Config{Importer: imp}
			pkg, err := conf.Check(p.ImportPath, fset, files, info)
			if err != nil {
				return nil, fmt.Errorf("type-checking %s (tags %q): %v", p.ImportPath, tags, err)
			}
			codeType := lookupCode(pkg)
			if codeType == nil {
				continue // neither is nor imports fault
			}
			isCode := func(t types.Type) bool { return types.Identical(t, codeType) }
			at := func(pos token.Pos) string {
				p := fset.Position(pos)
				rel, _ := filepath.Rel(root, p.Filename)
				return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), p.Line)
			}
			// Constants of type Code, and the value expressions of const
			// declarations (a constant's value is its declaration, not a
			// literal written "outside a declaration").
			inDecl := map[ast.Expr]bool{}
			for _, f := range files {
				ast.Inspect(f, func(n ast.Node) bool {
					gd, ok := n.(*ast.GenDecl)
					if !ok || gd.Tok != token.CONST {
						return true
					}
					for _, spec := range gd.Specs {
						vs := spec.(*ast.ValueSpec)
						for _, v := range vs.Values {
							ast.Inspect(v, func(n ast.Node) bool {
								if e, ok := n.(ast.Expr); ok {
									inDecl[e] = true
								}
								return true
							})
						}
						for _, id := range vs.Names {
							c, ok := info.Defs[id].(*types.Const)
							if !ok || !isCode(c.Type()) || c.Val().Kind() != constant.String {
								continue
							}
							st := site{Pkg: p.ImportPath, Name: id.Name, Pos: at(id.Pos())}
							if key := "d" + st.Pos + st.Name; !seenSite[key] {
								seenSite[key] = true
								code := constant.StringVal(c.Val())
								s.Decls[code] = append(s.Decls[code], st)
							}
						}
					}
					return false
				})
			}
			for e, tv := range info.Types {
				if tv.Value == nil || tv.Value.Kind() != constant.String || !isCode(tv.Type) || inDecl[e] {
					continue
				}
				switch e.(type) {
				case *ast.Ident, *ast.SelectorExpr, *ast.ParenExpr:
					continue // a named constant (counted as a use) or a wrapper of one
				}
				if call, ok := e.(*ast.CallExpr); ok && len(call.Args) == 1 {
					if _, lit := ast.Unparen(call.Args[0]).(*ast.BasicLit); !lit {
						continue // Code(someConst): the constant is the code
					}
				}
				code := constant.StringVal(tv.Value)
				if code == "" {
					continue // the zero Code: "no code", as in a comparison
				}
				st := site{Pkg: p.ImportPath, Pos: at(e.Pos())}
				if key := "l" + st.Pos; !seenSite[key] {
					seenSite[key] = true
					s.Literals[code] = append(s.Literals[code], st)
				}
			}
			for id, obj := range info.Uses {
				c, ok := obj.(*types.Const)
				if !ok || !isCode(c.Type()) || c.Pkg() == nil {
					continue
				}
				key := c.Pkg().Path() + "." + c.Name()
				if k := "u" + at(id.Pos()) + key; !seenSite[k] {
					seenSite[k] = true
					s.Uses[key]++
				}
			}
		}
	}
	for _, m := range []map[string][]site{s.Decls, s.Literals} {
		for _, sites := range m {
			sort.Slice(sites, func(i, j int) bool { return sites[i].Pos < sites[j].Pos })
		}
	}
	return s, nil
}

// lookupCode returns fault.Code as pkg sees it, or nil when pkg neither is
// nor imports package fault.
func lookupCode(pkg *types.Package) types.Type {
	if pkg.Path() == faultPath {
		return pkg.Scope().Lookup("Code").Type()
	}
	for _, imp := range pkg.Imports() {
		if imp.Path() == faultPath {
			return imp.Scope().Lookup("Code").Type()
		}
	}
	return nil
}

func goList(root, tags string) ([]listedPackage, error) {
	args := []string{"list", "-e", "-deps", "-export", "-json=Dir,ImportPath,Export,GoFiles,CgoFiles,Standard,Module,Error"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(goTool(), append(args, "./...")...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list (tags %q): %v\n%s", tags, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list (tags %q): %s: %s", tags, p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// goTool is the go command of the toolchain that built this test: the gc
// importer reads only export data of its own version.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// moduleRoot is the directory of the module's go.mod, found upwards from the
// test's working directory (the package directory).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	return dir
}
