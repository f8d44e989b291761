package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/mcpsession"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools"
)

// Verifier verifies a task token (auth.CachedVerifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*auth.Claims, error)
}

// Sessions checks that a task session is alive and not revoked up its
// chain (sessions.Store).
type Sessions interface {
	Check(ctx context.Context, principal, sid, jti string) error
}

// Trail is where the edge audits the tool calls it refuses: a
// limits.Coalescer, so that repeats within a window are one entry.
type Trail interface {
	Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error)
}

// Config is what the edge needs. Every field is required but Log and
// SessionsPerPrincipal (0: no limit on legacy MCP sessions).
type Config struct {
	// PublicURL is tollgate's public URL: challenges name the metadata
	// and the token endpoint under it.
	PublicURL string
	// MaxBodyBytes and BodyTimeout bound a verified caller's body
	// (--max-body-bytes, --body-timeout).
	MaxBodyBytes int64
	BodyTimeout  time.Duration
	// SessionIdle closes a legacy MCP session idle that long
	// (--mcp-session-idle); SessionsPerPrincipal bounds how many one
	// principal keeps open (--mcp-sessions-per-principal).
	SessionIdle          time.Duration
	SessionsPerPrincipal int
	// InFlight bounds the requests in flight on this replica per principal
	// and per task session.
	InFlight *limits.InFlight
	Verifier Verifier
	Sessions Sessions
	// Owners records which principal each legacy MCP session belongs to.
	Owners   *mcpsession.Owners
	Refusals Trail
	// Tools are the tools served: the edge checks a call's scopes against
	// its tool's, once.
	Tools   []tools.Tool
	Observe *observe.Observer
	Log     *slog.Logger
}

// Edge is the HTTP edge of /mcp: what it lets through, and how it
// accounts for what it refuses.
type Edge struct {
	cfg Config
	// unauth counts requests with no valid token (there is no identity to
	// audit); they are logged at a sampled rate.
	unauth  atomic.Int64
	sampler logSampler
	log     *slog.Logger
}

// New builds the edge.
func New(cfg Config) (*Edge, error) {
	if cfg.PublicURL == "" || cfg.InFlight == nil || cfg.Verifier == nil || cfg.Sessions == nil || cfg.Owners == nil ||
		cfg.Refusals == nil || cfg.Observe == nil {
		return nil, errors.New("edge: Config needs PublicURL, InFlight, Verifier, Sessions, Owners, Refusals and Observe")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Edge{cfg: cfg, sampler: logSampler{every: 10 * time.Second}, log: cfg.Log.With("component", "edge")}, nil
}

// unauthenticated counts a request refused for want of a valid token and
// logs the first of every sampling period, with how many came since.
func (e *Edge) unauthenticated(r *http.Request, why string) {
	n := e.unauth.Add(1)
	e.cfg.Observe.Refused(string(fault.Unauthenticated))
	if skipped, ok := e.sampler.take(); ok {
		e.log.Warn("request without a valid task token refused", "why", why, "remote", r.RemoteAddr,
			"path", r.URL.Path, "refused_since_last_line", skipped, "refused_total", n)
	}
}

// Unauthenticated is how many requests this replica refused for want of a
// valid token.
func (e *Edge) Unauthenticated() int64 { return e.unauth.Load() }

// logSampler lets one log line through per period and counts the rest.
type logSampler struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	n     int64
}

func (s *logSampler) take() (skipped int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.last.IsZero() && now.Sub(s.last) < s.every {
		s.n++
		return 0, false
	}
	skipped, s.n, s.last = s.n, 0, now
	return skipped, true
}
