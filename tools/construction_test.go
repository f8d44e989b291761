package tools

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
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

// TestDeclarationsMatchHandlers: a tool whose declaration and typed
// handler disagree is refused when it is built, never served.
func TestDeclarationsMatchHandlers(t *testing.T) {
	type args struct {
		Name string `json:"name"`
	}
	type other struct {
		Zone string `json:"zone"`
	}
	do := func(context.Context, Call[args]) (args, error) { return args{}, nil }
	pay := func(context.Context, Call[args]) (args, *Charge, error) { return args{}, nil, nil }
	quote := func(context.Context, Call[args]) (Quote, error) { return Quote{}, nil }
	def := func(opts ...mcp.ToolOption) mcp.Tool {
		return mcp.NewTool("t", append([]mcp.ToolOption{mcp.WithDescription("d"), annotate(false, false, true, true)}, opts...)...)
	}
	tests := []struct {
		name string
		tool Tool
	}{
		{"input schema of another type", Tool{def: def(mcp.WithInputSchema[other](), mcp.WithOutputSchema[args]()), run: handler[args, args]{do: do}}},
		{"output schema of another type", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[other]()), run: handler[args, args]{do: do}}},
		{"paid tool without a charge", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]()), Paid: true, Provider: "stripe", Creating: true, Metered: true,
			run: handler[args, args]{do: do, quote_: quote}}},
		{"unpaid tool reporting a charge", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]()), run: handler[args, args]{pay: pay}}},
		{"paid tool without a quote", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]()), Paid: true, Provider: "stripe", Creating: true, Metered: true,
			run: handler[args, args]{pay: pay}}},
		{"gates that are never asked", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]()), Gates: []string{"purchase"}, run: handler[args, args]{do: do}}},
		{"no handler at all", Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]())}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.tool.check(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	ok := Tool{def: def(mcp.WithInputSchema[args](), mcp.WithOutputSchema[args]()), run: handler[args, args]{do: do}}
	if err := ok.check(); err != nil {
		t.Fatalf("a matching tool was refused: %v", err)
	}
}
