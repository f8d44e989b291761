package tools

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/observe"
)

// TokenVerifier verifies a task token's signature and registered claims.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Claims, error)
}

// Credentials yields the caller's task token on transports without HTTP
// headers (stdio: TOLLGATE_TOKEN, TOLLGATE_TOKEN_FILE or the sandbox's
// local session).
type Credentials func(ctx context.Context) (string, error)

// GuardConfig configures the guard.
type GuardConfig struct {
	Verifier    TokenVerifier
	Credentials Credentials // used when the request carries no verified claims
	// InFlight bounds the calls in flight per principal and per task
	// session of callers identified here (stdio); the HTTP edge bounds its
	// own requests with 429. nil: no bound.
	InFlight *limits.InFlight
}

// Identity is what the guard established about the caller of a tool.
type Identity struct {
	Claims *auth.Claims
	// scopesFor is the tool whose scopes the HTTP edge already checked.
	scopesFor string
}

type identityKey struct{}

// WithClaims records claims verified at the HTTP edge in ctx, and the tool
// whose scopes the edge checked with ScopeError ("" for none): step 3
// happens once per call, with one message.
func WithClaims(ctx context.Context, c *auth.Claims, scopesCheckedFor string) context.Context {
	return context.WithValue(ctx, identityKey{}, Identity{Claims: c, scopesFor: scopesCheckedFor})
}

// IdentityFrom returns the caller the guard established.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok && id.Claims != nil
}

// guard serves every tool: the one path from an MCP tools/call to a
// tool's handler (SPEC §7). Each call is audited and logged (guard.call),
// its caller identified and bounded (steps 1 and 3), its arguments checked
// against the tool's rules and bound once into the tool's own type, then
// run through steps 2 and 4–10 (pipelineCall).
type guard struct {
	deps     GuardDeps
	auditLog *slog.Logger
}

func newGuard(deps GuardDeps) *guard {
	return &guard{deps: deps, auditLog: deps.Log.With("component", "audit")}
}

// handler is how the MCP server calls t: through the guard, always.
func (g *guard) handler(t Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return g.call(ctx, t, req), nil
	}
}

// steps runs one call from its token to its result; rec collects what the
// call's audit entry will say.
func (g *guard) steps(ctx context.Context, t Tool, req mcp.CallToolRequest, rec *callRecord) *mcp.CallToolResult {
	cfg := g.deps.Guard
	_, atEdge := IdentityFrom(ctx)
	_, endStep := observe.Step(ctx, "token")
	c, scopesFor, err := cfg.identify(ctx)
	endStep(err)
	rec.Claims = c
	if err != nil {
		return Refuse(err)
	}
	if !atEdge && cfg.InFlight != nil {
		release, err := cfg.InFlight.Acquire(c.Subject, c.SessionID)
		if err != nil {
			var lim *limits.Refusal
			if errors.As(err, &lim) {
				return Refuse(lim.Fault())
			}
			return Refuse(err)
		}
		defer release()
	}
	// Step 2, the session re-checked in Redis on every call, is in the
	// first phase of the pipeline, with the audit entry.
	// Step 3: scopes, unless the HTTP edge checked them for this tool (it
	// answers 403 with the same message).
	if scopesFor != t.def.Name {
		_, endStep := observe.Step(ctx, "scopes")
		err := ScopeError(t, c.Scopes())
		endStep(err)
		if err != nil {
			return Refuse(err)
		}
	}
	// The arguments: the tool's declared rules, then bound once into its
	// own type. Nothing was taken, held or sent yet.
	raw := req.GetArguments()
	if err := checkArgs(t, raw); err != nil {
		return Refuse(err)
	}
	args, err := t.run.bind(req)
	if err != nil {
		return Refuse(err)
	}
	p := &pipelineCall{cfg: g.deps.Pipeline, t: t, c: c, rec: rec, args: args,
		f: facts{caller: c}}
	if m := req.Params.Meta; m != nil {
		p.f.progressToken = m.ProgressToken
	}
	return p.run(ctx, req, raw)
}

// identify is step 1: the claims verified at the HTTP edge, or the
// transport's own credentials verified here.
func (cfg GuardConfig) identify(ctx context.Context) (*auth.Claims, string, error) {
	if id, ok := IdentityFrom(ctx); ok {
		return id.Claims, id.scopesFor, nil
	}
	if cfg.Credentials == nil {
		return nil, "", fault.New(fault.Unauthenticated, "no task token: connect with Authorization: Bearer <token> (HTTP) or TOLLGATE_TOKEN (stdio)")
	}
	tok, err := cfg.Credentials(ctx)
	if err != nil {
		return nil, "", err
	}
	c, err := cfg.Verifier.Verify(ctx, tok)
	return c, "", err
}

// ScopeError is step 3's refusal of t for a token with scopes have, or
// nil when they cover t: the one message for stdio and HTTP alike.
func ScopeError(t Tool, have []string) error {
	missing := MissingScopes(t, have)
	if len(missing) == 0 {
		return nil
	}
	return fault.Newf(fault.InsufficientScope,
		"%s needs scope %s; this token lacks %s. Exchange for a token with those scopes; nothing was done",
		t.def.Name, strings.Join(t.Scopes, " "), strings.Join(missing, " "))
}

// MissingScopes returns the scopes t needs that are not in have.
func MissingScopes(t Tool, have []string) []string {
	var missing []string
	for _, s := range t.Scopes {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	return missing
}
