package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Call is one call of a tool as its handler sees it: the arguments, bound
// once by the guard into the tool's own type, and what the guard
// established before the handler runs, all as values. A handler reads
// nothing of the call from its context and hands nothing back through it:
// what it charged and where it acted are in what it returns.
type Call[A any] struct {
	Args A
	// Caller is the verified task token (step 1); its session was found
	// live in Redis by the guard's first phase (step 2).
	Caller *auth.Claims
	// Target is the domain the call touches, canonical and checked against
	// the token's tollgate:resources (step 4); empty for tools without a
	// Target.
	Target domainname.Name
	// Tenant is the principal's own Cloudflare account, with the zone for
	// Owned tools (step 4b); zero for tools that are not Account tools.
	Tenant Tenant
	// Hold is a paid call's hold (step 8), for its handler; zero in Quote
	// and Ask, which run before anything is held.
	Hold Hold

	progressToken mcp.ProgressToken
}

// Principal is the human the call acts for.
func (c Call[A]) Principal() string { return c.Caller.Subject }

// Progress sends an MCP progress notification when the caller asked for
// them (a progress token in _meta). Over HTTP some may be dropped.
func (c Call[A]) Progress(ctx context.Context, done, total float64, msg string) {
	if c.progressToken == nil {
		return
	}
	s := server.ServerFromContext(ctx)
	if s == nil {
		return
	}
	_ = s.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": c.progressToken, "progress": done, "total": total, "message": msg,
	})
}

// Hold is a paid call's hold against the cap and every task budget, as its
// handler sees it.
type Hold struct {
	Quote Quote
	ID    string
	Held  money.Money
	// UpstreamKey is the provider's idempotency key for this call,
	// derived from tollgate's: a retry sends the same one.
	UpstreamKey string
}

// Charge is what a provider took for a paid call (at most what was held)
// and the provider's request id. A paid handler returns one whenever the
// provider may have the order, even with a refusal; none releases the hold.
type Charge struct {
	Amount    money.Money
	RequestID string
	// Bind, for a subscription, binds it to the hold in the same script
	// as the commit (the guard fills in who started it).
	Bind *phase.Bind
	// With are writes of the principal's own state that belong with the
	// charge (a registered domain's zone): steps of the commit's script,
	// run after it and only when it is recorded. A step that answers 0
	// wrote nothing (the guard logs it; the result was already kept).
	With []fuse.Step
	// Note, for a one-off charge, is the provider's own key for it (for
	// a domain registration "<account id>/<domain>"): the committed hold
	// is listed under it for tollgate spend reconcile, in the same script
	// as the commit. NoteRef is kept with it (a request id).
	Note, NoteRef string
	// Unknown says the handler does not know what the provider took: it
	// returns the charge with its refusal only for the Note. Amount, Bind
	// and With are not used; the guard decides from the refusal whether
	// the held amount counts (outcome unknown), and if it does, lists it
	// under Note, so reconcile matches it with what the provider billed.
	Unknown bool
}

// facts is what the guard established for a call, whatever its tool's
// argument type.
type facts struct {
	caller        *auth.Claims
	target        domainname.Name
	tenant        Tenant
	hold          Hold
	progressToken mcp.ProgressToken
}

// outcome is what a handler produced, in the guard's terms.
type outcome struct {
	res    *mcp.CallToolResult
	charge *Charge
	// account is the Cloudflare account the handler acted in when the
	// guard did not resolve one for it (account_connect), for the audit.
	account string
}

// runner is a tool's typed behaviour behind one non-generic face, so that
// tools of every argument and result type sit in one list. Only the guard
// calls it (and the benchmark's bare mode, through NewUnguardedServer).
type runner interface {
	// bind decodes the call's arguments into the tool's argument type:
	// the only decoding of them for the tool.
	bind(req mcp.CallToolRequest) (any, error)
	quotes() bool
	asks() bool
	pays() bool
	quote(ctx context.Context, f facts, args any) (Quote, error)
	ask(ctx context.Context, f facts, args any, q *Quote) ([]Ask, error)
	run(ctx context.Context, f facts, args any) outcome
	check(t Tool) error
}

// handler is a tool's behaviour with its own argument and result types.
// Exactly one of do (unpaid) and pay (paid) is set; quote is set for paid
// tools, ask for tools with human gates.
type handler[A, R any] struct {
	quote_ func(ctx context.Context, c Call[A]) (Quote, error)
	ask_   func(ctx context.Context, c Call[A], q *Quote) ([]Ask, error)
	do     func(ctx context.Context, c Call[A]) (R, error)
	pay    func(ctx context.Context, c Call[A]) (R, *Charge, error)
}

var _ runner = handler[struct{}, struct{}]{}

func (h handler[A, R]) bind(req mcp.CallToolRequest) (any, error) {
	var a A
	if err := bind(req, &a); err != nil {
		return nil, err
	}
	return a, nil
}

func (h handler[A, R]) quotes() bool { return h.quote_ != nil }
func (h handler[A, R]) asks() bool   { return h.ask_ != nil }
func (h handler[A, R]) pays() bool   { return h.pay != nil }

func (h handler[A, R]) call(f facts, args any) Call[A] {
	a, _ := args.(A) // bind made it; a zero A only in a programming error
	return Call[A]{Args: a, Caller: f.caller, Target: f.target, Tenant: f.tenant, Hold: f.hold, progressToken: f.progressToken}
}

func (h handler[A, R]) quote(ctx context.Context, f facts, args any) (Quote, error) {
	return h.quote_(ctx, h.call(f, args))
}

func (h handler[A, R]) ask(ctx context.Context, f facts, args any, q *Quote) ([]Ask, error) {
	return h.ask_(ctx, h.call(f, args), q)
}

func (h handler[A, R]) run(ctx context.Context, f facts, args any) outcome {
	c := h.call(f, args)
	var (
		r      R
		charge *Charge
		err    error
	)
	if h.pay != nil {
		r, charge, err = h.pay(ctx, c)
	} else {
		r, err = h.do(ctx, c)
	}
	if err != nil {
		return outcome{res: Refuse(err), charge: charge}
	}
	out := outcome{res: result(r), charge: charge}
	if a, ok := any(r).(interface{ actedIn() string }); ok {
		out.account = a.actedIn()
	}
	return out
}

// check reports a handler that does not fit its tool's declaration.
func (h handler[A, R]) check(t Tool) error {
	switch {
	case (h.do == nil) == (h.pay == nil):
		return fmt.Errorf("tools: %s needs exactly one of do and pay", t.def.Name)
	case t.Paid != (h.pay != nil):
		return fmt.Errorf("tools: %s: a paid tool reports its charge (pay), an unpaid one cannot", t.def.Name)
	case t.Paid && h.quote_ == nil:
		return fmt.Errorf("tools: paid tool %s needs a quote", t.def.Name)
	case !t.Paid && h.quote_ != nil:
		return fmt.Errorf("tools: %s quotes but is not paid", t.def.Name)
	case len(t.Gates) > 0 && h.ask_ == nil:
		return fmt.Errorf("tools: %s declares gates but never asks", t.def.Name)
	}
	// The published schemas are those of the types the handler binds and
	// returns: an agent is told exactly what the guard will accept.
	want := mcp.NewTool(t.def.Name, mcp.WithInputSchema[A](), mcp.WithOutputSchema[R]())
	if !sameJSON(want.InputSchema, t.def.InputSchema) || !sameJSON(want.RawInputSchema, t.def.RawInputSchema) {
		return fmt.Errorf("tools: %s publishes an input schema that is not its handler's argument type", t.def.Name)
	}
	if !sameJSON(want.OutputSchema, t.def.OutputSchema) || !sameJSON(want.RawOutputSchema, t.def.RawOutputSchema) {
		return fmt.Errorf("tools: %s publishes an output schema that is not its handler's result type", t.def.Name)
	}
	return nil
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
