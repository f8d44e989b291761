package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestInspectorStrictFindsNoPortabilityWarnings runs MCP Inspector's CLI
// (@modelcontextprotocol/inspector, installed by make e2e-deps) with
// --strict against tollgate stdio: its schema portability check must find
// nothing in any tool's input or output schema (no ["null", T] type
// unions, no keyword-less schemas).
func TestInspectorStrictFindsNoPortabilityWarnings(t *testing.T) {
	node, _ := tsClient(t) // node and the e2e packages, or a knowing skip
	inspector := filepath.Join(testkit.ModuleRoot(), "e2e", "ts", "node_modules", "@modelcontextprotocol", "inspector", "package.json")
	if _, err := os.Stat(inspector); err != nil {
		if os.Getenv(envSkipTS) == "1" {
			t.Skipf("%s=1 and MCP Inspector is not installed in e2e/ts/node_modules", envSkipTS)
		}
		t.Fatalf("MCP Inspector is not installed in e2e/ts/node_modules: run `make e2e-deps`, or set %s=1 to skip this test knowingly", envSkipTS)
	}
	bin := testkit.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli := filepath.Join(testkit.ModuleRoot(), "e2e", "ts", "node_modules", ".bin", "mcp-inspector")
	cmd := exec.CommandContext(ctx, node, cli, "--cli", bin, "stdio", "--method", "tools/list", "--strict",
		"-e", "TOLLGATE_REDIS_URL="+testkit.RedisURL(t))
	// The Inspector keeps a catalog under HOME; keep it in the test's dir.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "MCP_CATALOG_PATH="+filepath.Join(home, "catalog"), "MCP_CLIENT_CONFIG_PATH="+filepath.Join(home, "clients"))
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	if err != nil {
		t.Fatalf("mcp-inspector --cli --strict: %v\n%s", err, out)
	}
	if strings.Contains(strings.ToLower(out), "warning") {
		t.Fatalf("MCP Inspector --strict reports portability warnings:\n%s", out)
	}
	// The check ran over the real tool list, not an empty one.
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &list); err != nil || len(list.Tools) < 17 {
		t.Fatalf("the Inspector listed %d tools (%v):\n%s", len(list.Tools), err, out)
	}
}
