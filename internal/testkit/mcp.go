package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Era names an MCP protocol generation a test client speaks.
type Era string

const (
	Modern Era = mcp.LATEST_PROTOCOL_VERSION        // 2026-07-28: stateless, multi-round-trip input
	Legacy Era = mcp.LATEST_LEGACY_PROTOCOL_VERSION // 2025-11-25: initialize handshake, elicitation/create
)

// Eras lists both eras, for table tests.
var Eras = []Era{Modern, Legacy}

// ClientOptions configure a test client.
type ClientOptions struct {
	Era        Era
	Headers    map[string]string // HTTP only, e.g. Authorization
	HeaderFunc func(context.Context) map[string]string
	Elicit     client.ElicitationHandler
	Caps       *mcp.ClientCapabilities
}

func (o ClientOptions) clientOpts() []client.ClientOption {
	var opts []client.ClientOption
	if o.Era == Legacy {
		opts = append(opts, client.WithProtocolVersion(string(Legacy)))
	}
	if o.Elicit != nil {
		opts = append(opts, client.WithElicitationHandler(o.Elicit))
	}
	if o.Caps != nil {
		opts = append(opts, client.WithClientCapabilities(*o.Caps))
	}
	return opts
}

func initialize(t testing.TB, c *client.Client) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Start's context lives as long as the client: a stdio transport ties
	// the subprocess to it.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("testkit: start MCP client: %v", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "tollgate-test", Version: "0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("testkit: initialize MCP client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// InProcess connects a client to srv in the same process.
func InProcessClient(t testing.TB, connect func(...client.ClientOption) (*client.Client, error), o ClientOptions) *client.Client {
	t.Helper()
	c, err := connect(o.clientOpts()...)
	if err != nil {
		t.Fatalf("testkit: in-process client: %v", err)
	}
	return initialize(t, c)
}

// HTTP connects a Streamable HTTP client to url (ending in /mcp).
func HTTP(t testing.TB, url string, o ClientOptions) *client.Client {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPTimeout(30 * time.Second)}
	if o.Headers != nil {
		topts = append(topts, transport.WithHTTPHeaders(o.Headers))
	}
	if o.HeaderFunc != nil {
		topts = append(topts, transport.WithHTTPHeaderFunc(o.HeaderFunc))
	}
	tr, err := transport.NewStreamableHTTP(url, topts...)
	if err != nil {
		t.Fatalf("testkit: HTTP transport: %v", err)
	}
	return initialize(t, client.NewClient(tr, o.clientOpts()...))
}

// Stdio launches bin with args and env as a subprocess and connects to it.
func Stdio(t testing.TB, bin string, env []string, o ClientOptions, args ...string) *client.Client {
	t.Helper()
	tr := transport.NewStdio(bin, env, args...)
	return initialize(t, client.NewClient(tr, o.clientOpts()...))
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Binary builds cmd/tollgate once per test process (with -race when the
// tests run with it) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tollgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "tollgate")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/tollgate-dev/tollgate/cmd/tollgate")
		cmd := exec.Command("go", args...)
		cmd.Dir = ModuleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("testkit: build tollgate: %v", buildErr)
	}
	return buildBin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// ModuleRoot is the repository root (where go.mod lives).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
