package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Tool is one MCP tool and what the guard needs to know about it.
type Tool struct {
	Def    mcp.Tool
	Scopes []string // all scopes a token needs to call the tool
	Gates  []string // human gates the tool may ask (see gates)

	// Provider is the provider the tool calls, if any.
	Provider string
	// Metered tools reach a provider: rate-limited and loop-guarded (§9.3).
	Metered bool
	// Creating tools create or pay for something: idempotent (§9.2).
	Creating bool
	// Paid tools hold Quote's amount against the cap before the provider
	// call (§9.1); the handler reports the charge with Spend.Charged.
	Paid  bool
	Quote func(ctx context.Context, req mcp.CallToolRequest) (Quote, error)
	// Target names the argument holding the domain or zone the call
	// touches; the pipeline checks it against tollgate:resources (step 4).
	// A tool that changes something needs its target named there; a token
	// naming no domains may only read.
	Target string
	// WorkerTarget: Target holds a Worker name, which stands for the
	// domain it serves (domainname.DomainOfWorker); that domain is checked.
	WorkerTarget bool
	// Account tools act in the principal's own linked Cloudflare account
	// (CloudflareFrom); without one the call is refused before anything.
	Account bool
	// Owned tools act on a zone of that account: the target must be one
	// tollgate knows the account holds (step 4b).
	Owned bool
	// Ask returns the human gates this call needs (step 7), given the
	// quote of a paid call; none means go on.
	Ask func(ctx context.Context, req mcp.CallToolRequest, q *Quote) ([]Ask, error)

	Handler server.ToolHandlerFunc
}

// Middleware wraps a tool's handler. It sees the tool's declaration, so a
// guard can check scopes and gates per tool.
type Middleware func(t Tool, next server.ToolHandlerFunc) server.ToolHandlerFunc

// Register adds tools to s, each wrapped in chain (the first middleware is
// the outermost). It panics on a tool without a description, without
// explicit annotations or scopes, or on a duplicate name: those are
// programming errors caught at start-up.
func Register(s *server.MCPServer, chain []Middleware, ts ...Tool) {
	seen := map[string]bool{}
	for _, t := range ts {
		if err := t.check(); err != nil {
			panic(err)
		}
		if seen[t.Def.Name] {
			panic(fmt.Sprintf("tools: duplicate tool %q", t.Def.Name))
		}
		seen[t.Def.Name] = true
		if err := allowRefusals(&t.Def); err != nil {
			panic(err)
		}
		h := t.Handler
		for i := len(chain) - 1; i >= 0; i-- {
			h = chain[i](t, h)
		}
		s.AddTool(t.Def, h)
	}
}

func (t Tool) check() error {
	a := t.Def.Annotations
	switch {
	case t.Def.Name == "":
		return fmt.Errorf("tools: a tool has no name")
	case t.Def.Description == "":
		return fmt.Errorf("tools: %s has no description", t.Def.Name)
	case t.Handler == nil:
		return fmt.Errorf("tools: %s has no handler", t.Def.Name)
	case a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil:
		return fmt.Errorf("tools: %s must set every annotation explicitly", t.Def.Name)
	case *a.ReadOnlyHint && *a.DestructiveHint:
		return fmt.Errorf("tools: %s cannot be read-only and destructive", t.Def.Name)
	case *a.ReadOnlyHint && t.Paid:
		return fmt.Errorf("tools: %s cannot be read-only and paid", t.Def.Name)
	case t.Paid && (t.Quote == nil || t.Provider == "" || !t.Creating || !t.Metered):
		return fmt.Errorf("tools: paid tool %s needs a Quote, a Provider, and must be Creating and Metered", t.Def.Name)
	case t.Owned && (!t.Account || t.Target == ""):
		return fmt.Errorf("tools: %s acts on an owned zone, so it needs Account and a Target", t.Def.Name)
	case t.Account && t.Provider != "cloudflare":
		return fmt.Errorf("tools: %s acts in a linked Cloudflare account, so its Provider is cloudflare", t.Def.Name)
	case t.Provider != "" && !t.Metered:
		// Whatever reaches a provider, or asks a human, is rate-limited.
		return fmt.Errorf("tools: %s reaches %s, so it must be Metered", t.Def.Name, t.Provider)
	}
	return nil
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
