package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// envSkipTS names the switch that skips the TypeScript client tests on a
// machine without Node. Without it a missing client is a failure: SPEC §14
// wants this test to run, and `make test` installs what it needs.
const envSkipTS = "TOLLGATE_SKIP_TS_E2E"

// tsTimeout bounds one run of the client, connection and every step.
const tsTimeout = 60 * time.Second

// tsClient returns node and the path of client.mjs, or stops the test when
// either is missing.
func tsClient(t *testing.T) (node, script string) {
	t.Helper()
	dir := filepath.Join(testkit.ModuleRoot(), "e2e", "ts")
	sdk := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
	node, err := exec.LookPath("node")
	var missing string
	switch {
	case err != nil:
		missing = "node is not on PATH (install Node.js 20 or later)"
	default:
		if _, err := os.Stat(sdk); err != nil {
			missing = "the TypeScript MCP SDK is not installed in e2e/ts/node_modules"
		}
	}
	if missing == "" {
		return node, filepath.Join(dir, "client.mjs")
	}
	if os.Getenv(envSkipTS) == "1" {
		t.Skipf("%s=1 and %s; the end-to-end test with the official TypeScript SDK did not run", envSkipTS, missing)
	}
	t.Fatalf("%s: run `make e2e-deps` (or `make test`, which does it), or set %s=1 to skip this test knowingly", missing, envSkipTS)
	return "", ""
}

// tsOutput is what client.mjs prints: the protocol version the server chose,
// one raw result per script step, and the elicitation requests it answered.
type tsOutput struct {
	ProtocolVersion string            `json:"protocolVersion"`
	Results         []json.RawMessage `json:"results"`
	Elicitations    []json.RawMessage `json:"elicitations"`
}

// runTS runs client.mjs with args (--http URL ... or --stdio BIN ...) on
// script (steps, or {"elicit":..., "steps":[...]}), and decodes what it
// printed. It fails the test when the client cannot connect, exits non-zero,
// takes longer than tsTimeout or prints anything but one JSON document.
func runTS(t *testing.T, script any, args ...string) tsOutput {
	t.Helper()
	node, client := tsClient(t)
	raw, err := json.Marshal(script)
	if err != nil {
		t.Fatalf("encode script: %v", err)
	}
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append(append([]string{client}, args...), path)...)
	cmd.Dir = filepath.Dir(client)
	// A stdio server the client launched may hold stderr open after node is
	// killed; do not wait on it forever.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("TypeScript client did not finish within %s\nstderr:\n%s", tsTimeout, stderr.String())
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			t.Fatalf("TypeScript client could not connect (exit 1)\nstderr:\n%s", stderr.String())
		}
		t.Fatalf("TypeScript client: %v\nstderr:\n%s", err, stderr.String())
	}
	var out tsOutput
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("TypeScript client printed no JSON document: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if dec.More() {
		t.Fatalf("TypeScript client printed more than one JSON document\nstdout:\n%s", stdout.String())
	}
	if len(out.Results) != stepCount(script) {
		t.Fatalf("TypeScript client returned %d results for %d steps\nstdout:\n%s", len(out.Results), stepCount(script), stdout.String())
	}
	return out
}

func stepCount(script any) int {
	switch s := script.(type) {
	case []step:
		return len(s)
	case tsScript:
		return len(s.Steps)
	}
	return -1
}

// step is one entry of a client.mjs script.
type step struct {
	Op        string         `json:"op"`
	Name      string         `json:"name,omitempty"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

// tsScript is the object form of a script, with the human's answers to
// elicitations.
type tsScript struct {
	Elicit any    `json:"elicit,omitempty"`
	Steps  []step `json:"steps"`
}

func listTools() step { return step{Op: "listTools"} }

func callTool(name string, args map[string]any) step {
	if args == nil {
		args = map[string]any{}
	}
	return step{Op: "callTool", Name: name, Arguments: args}
}
