package tools

import (
	"context"
	"errors"
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

// withGuard is steps 1 and 3 of the pipeline every tool runs through (SPEC
// §7): a valid token and the tool's scopes; the pipeline checks the
// session (2) in its first phase and the resources (4). Every refusal here happens before any
// provider call, and says so.
func withGuard(cfg GuardConfig) middleware {
	return func(t Tool, next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_, atEdge := IdentityFrom(ctx)
			_, endStep := observe.Step(ctx, "token")
			c, scopesFor, err := cfg.identify(ctx)
			endStep(err)
			if rec := Record(ctx); rec != nil {
				rec.Claims = c
			}
			deny := func(err error) (*mcp.CallToolResult, error) { return Refuse(err), nil }
			if err != nil {
				return deny(err)
			}
			if !atEdge && cfg.InFlight != nil {
				release, err := cfg.InFlight.Acquire(c.Subject, c.SessionID)
				if err != nil {
					var lim *limits.Refusal
					if errors.As(err, &lim) {
						return deny(lim.Fault())
					}
					return deny(err)
				}
				defer release()
			}
			// (The Audit middleware records this call and its outcome.)
			// Step 2, the session re-checked in Redis on every call, is in
			// the first phase of the pipeline, with the audit entry.
			// Step 3: scopes, unless the HTTP edge checked them for this
			// tool (it answers 403 with the same message).
			if scopesFor != t.def.Name {
				_, endStep := observe.Step(ctx, "scopes")
				err := ScopeError(t, c.Scopes())
				endStep(err)
				if err != nil {
					return deny(err)
				}
			}
			return next(context.WithValue(ctx, identityKey{}, Identity{Claims: c}), req)
		}
	}
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
