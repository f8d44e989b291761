package tools

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/internal/observe"
)

// Tool is one MCP tool and what the guard needs to know about it. Its
// definition and handler are unexported: the only way to serve a tool is
// NewServer, which wraps every handler in the guard.
type Tool struct {
	def    mcp.Tool
	Scopes []string // all scopes a token needs to call the tool
	Gates  []string // human gates the tool may ask (see gates)

	// Provider is the provider the tool calls, if any.
	Provider string
	// Metered tools reach a provider: rate-limited and loop-guarded (§9.3).
	Metered bool
	// Creating tools create or pay for something: idempotent (§9.2).
	Creating bool
	// Paid tools hold their quote's amount against the cap before the
	// provider call (§9.1); the handler returns what was charged.
	Paid bool
	// Target names the argument holding the domain or zone the call
	// touches; the pipeline checks it against tollgate:resources (step 4).
	// A tool that changes something needs its target named there; a token
	// naming no domains may only read.
	Target string
	// WorkerTarget: Target holds a Worker name, which stands for the
	// domain it serves (domainname.DomainOfWorker); that domain is checked.
	WorkerTarget bool
	// Account tools act in the principal's own linked Cloudflare account
	// (Call.Tenant); without one the call is refused before anything.
	Account bool
	// Owned tools act on a zone of that account: the target must be one
	// tollgate knows the account holds (step 4b).
	Owned bool

	// args are the argument rules the schema publishes and the guard
	// enforces before anything else (ArgRule).
	args map[string]ArgRule
	// run is the tool's typed behaviour (handler[A, R]): its quote, its
	// human gates (step 7) and its handler (step 9).
	run runner
}

// Name is the tool's MCP name.
func (t Tool) Name() string { return t.def.Name }

// Definition is the tool's MCP definition as clients see it (a copy):
// output schema widened to admit refusals, schemas in their portable
// spelling, scopes and gates in _meta.
func (t Tool) Definition() mcp.Tool {
	def, err := t.published()
	if err != nil {
		panic(err) // register panics on the same error first
	}
	return def
}

// published is the definition register serves.
func (t Tool) published() (mcp.Tool, error) {
	def := t.def
	if err := applyArgRules(&def, t.args); err != nil {
		return mcp.Tool{}, err
	}
	if err := allowRefusals(&def); err != nil {
		return mcp.Tool{}, err
	}
	if err := portable(&def); err != nil {
		return mcp.Tool{}, err
	}
	withMeta(&def, t)
	return def, nil
}

// GuardDeps is what the guard needs: the audit trail, the identity and
// session checks, and steps 4 to 10.
type GuardDeps struct {
	Trail    Trail
	Log      *slog.Logger
	Guard    GuardConfig
	Pipeline PipelineConfig
	// Observe counts and traces every call (nil: neither).
	Observe *observe.Observer
}

func (d GuardDeps) check() error {
	p := d.Pipeline
	switch {
	case d.Trail == nil || d.Log == nil:
		return fmt.Errorf("tools: the guard needs an audit trail and a log")
	case d.Guard.Verifier == nil:
		return fmt.Errorf("tools: the guard needs a token verifier")
	case p.Phases == nil || p.Tenancy == nil || p.Idem == nil || p.Loop == nil || p.Sessions == nil || p.Trail == nil || p.Log == nil:
		return fmt.Errorf("tools: the guard's pipeline is missing a dependency")
	}
	return nil
}

// NewServer builds the MCP server and serves every tool through the
// guard. It is the only way a tool is served: a handler never runs
// unguarded. It panics on a guard without its dependencies, a tool without
// a description, explicit annotations or scopes, or a duplicate name:
// programming errors caught at start-up.
func NewServer(deps GuardDeps, opts []server.ServerOption, name, version string, ts ...Tool) *server.MCPServer {
	if err := deps.check(); err != nil {
		panic(err)
	}
	g := newGuard(deps)
	s := server.NewMCPServer(name, version, opts...)
	register(s, g.handler, ts...)
	for _, t := range ts {
		// Only these names become label values; any other is "other".
		deps.Observe.KnowTools(t.def.Name)
	}
	return s
}

// NewUnguardedServer serves ts with no guard at all: no token, no session,
// no scopes, no audit; each handler gets its bound arguments and nothing
// else. It is the benchmark's baseline ("bare mode"), what the guard's
// cost is measured against, and nothing else: a test keeps its callers
// inside bench/.
func NewUnguardedServer(opts []server.ServerOption, name, version string, ts ...Tool) *server.MCPServer {
	s := server.NewMCPServer(name, version, opts...)
	register(s, bare, ts...)
	return s
}

// bare serves t with no guard (NewUnguardedServer).
func bare(t Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args, err := t.run.bind(req)
		if err != nil {
			return Refuse(err), nil
		}
		return t.run.run(ctx, facts{}, args).res, nil
	}
}

// register adds tools to s, each served by the handler serve makes for it.
func register(s *server.MCPServer, serve func(Tool) server.ToolHandlerFunc, ts ...Tool) {
	seen := map[string]bool{}
	for _, t := range ts {
		if err := t.check(); err != nil {
			panic(err)
		}
		if seen[t.def.Name] {
			panic(fmt.Sprintf("tools: duplicate tool %q", t.def.Name))
		}
		seen[t.def.Name] = true
		def, err := t.published()
		if err != nil {
			panic(err)
		}
		t.def = def
		s.AddTool(t.def, serve(t))
	}
}

func (t Tool) check() error {
	a := t.def.Annotations
	switch {
	case t.def.Name == "":
		return fmt.Errorf("tools: a tool has no name")
	case t.def.Description == "":
		return fmt.Errorf("tools: %s has no description", t.def.Name)
	case t.run == nil:
		return fmt.Errorf("tools: %s has no handler", t.def.Name)
	case a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil:
		return fmt.Errorf("tools: %s must set every annotation explicitly", t.def.Name)
	case *a.ReadOnlyHint && *a.DestructiveHint:
		return fmt.Errorf("tools: %s cannot be read-only and destructive", t.def.Name)
	case *a.ReadOnlyHint && t.Paid:
		return fmt.Errorf("tools: %s cannot be read-only and paid", t.def.Name)
	case t.Paid && (t.Provider == "" || !t.Creating || !t.Metered):
		return fmt.Errorf("tools: paid tool %s needs a Provider, and must be Creating and Metered", t.def.Name)
	case t.Owned && (!t.Account || t.Target == ""):
		return fmt.Errorf("tools: %s acts on an owned zone, so it needs Account and a Target", t.def.Name)
	case t.Account && t.Provider != "cloudflare":
		return fmt.Errorf("tools: %s acts in a linked Cloudflare account, so its Provider is cloudflare", t.def.Name)
	case t.Provider != "" && !t.Metered:
		// Whatever reaches a provider, or asks a human, is rate-limited.
		return fmt.Errorf("tools: %s reaches %s, so it must be Metered", t.def.Name, t.Provider)
	}
	return t.run.check(t)
}

// annotate sets all four hints explicitly (mcp.NewTool defaults every tool
// to destructive and open-world).
func annotate(readOnly, destructive, idempotent, openWorld bool) mcp.ToolOption {
	return func(t *mcp.Tool) {
		t.Annotations.ReadOnlyHint = &readOnly
		t.Annotations.DestructiveHint = &destructive
		t.Annotations.IdempotentHint = &idempotent
		t.Annotations.OpenWorldHint = &openWorld
	}
}
