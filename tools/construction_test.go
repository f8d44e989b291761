package tools

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoToolIsServedAroundTheGuard: in the whole module, only NewServer's
// register adds tools to an MCP server, and the guard-less baseline
// (NewUnguardedServer) is used by the benchmark alone.
func TestNoToolIsServedAroundTheGuard(t *testing.T) {
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src, rel := string(b), filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if strings.Contains(src, ".AddTool(") && rel != "tools/registry.go" {
			t.Errorf("%s adds a tool to an MCP server itself; serve tools with tools.NewServer", rel)
		}
		if strings.Contains(src, "NewUnguardedServer(") && rel != "tools/registry.go" && !strings.HasPrefix(rel, "bench/") {
			t.Errorf("%s serves tools without the guard; only the benchmark's baseline may", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
