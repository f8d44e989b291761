package app

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/observe"
)

// edgeLimits is what the HTTP edge bounds per principal, and how it
// accounts for what it refuses.
type edgeLimits struct {
	// inflight bounds the requests in flight on this replica per principal
	// and per task session.
	inflight *limits.InFlight
	// refusals is the audit trail for refusals (the edge's and the
	// guard's): repeats within a window are counted into one entry.
	refusals *limits.Coalescer
	// unauth counts requests with no valid token (there is no identity to
	// audit); they are logged at a sampled rate.
	unauth  atomic.Int64
	sampler logSampler
	observe *observe.Observer
	log     *slog.Logger
}

// refusalWindow is how long identical refusals are counted into one
// audit entry.
const refusalWindow = time.Minute

// newEdgeLimits builds the edge's limits on the app's config and trail.
func (a *App) newEdgeLimits() *edgeLimits {
	return &edgeLimits{
		inflight: limits.NewInFlight(a.Cfg.InflightPerPrincipal, a.Cfg.InflightPerSession, time.Second),
		refusals: limits.NewCoalescer(a.id.trail, refusalWindow, 10000, func(err error) {
			a.Log.Error("audit append of a refusal count failed", "err", err)
		}),
		sampler: logSampler{every: 10 * time.Second},
		log:     a.Log.With("component", "edge"),
		observe: a.Observe,
	}
}

// unauthenticated counts a request refused for want of a valid token and
// logs the first of every sampling period, with how many came since.
func (e *edgeLimits) unauthenticated(r *http.Request, why string) {
	n := e.unauth.Add(1)
	e.observe.Refused(string(fault.Unauthenticated))
	if skipped, ok := e.sampler.take(); ok {
		e.log.Warn("request without a valid task token refused", "why", why, "remote", r.RemoteAddr,
			"path", r.URL.Path, "refused_since_last_line", skipped, "refused_total", n)
	}
}

// Unauthenticated is how many requests this replica refused for want of a
// valid token.
func (a *App) Unauthenticated() int64 { return a.edge.unauth.Load() }

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
