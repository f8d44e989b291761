package observe

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateConfig says where the state gauges (tollgate_holds,
// tollgate_approvals_pending) are read from.
type StateConfig struct {
	// Holds counts unsettled holds: held (TTL not passed) and expired
	// (TTL passed, not reconciled). truncated: the count left some out.
	Holds func(ctx context.Context) (held, expired int64, truncated bool, err error)
	// Pending counts approvals waiting for a human.
	Pending func(ctx context.Context) (pending int64, truncated bool, err error)
	// Every is the least time between two reads of the stores, however
	// often /metrics is scraped (default 15s).
	Every time.Duration
	// Timeout bounds one read (default 2s); a scrape never waits longer.
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// WatchState adds the state gauges. They are read from the stores when
// /metrics is scraped, at most once per cfg.Every: a flood of scrapes
// costs Redis nothing more. A failed read counts
// tollgate_state_read_errors_total{gauge} and leaves that gauge out of
// the scrape (absent means unknown, never a stale or made-up zero).
func (o *Observer) WatchState(cfg StateConfig) {
	if o == nil {
		return
	}
	if cfg.Every <= 0 {
		cfg.Every = 15 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &stateCollector{cfg: cfg,
		holds: prometheus.NewDesc("tollgate_holds",
			"Unsettled holds in the spend ledger by state: held (open, TTL not passed) and expired (TTL passed without a commit or release; reconcile them).",
			[]string{"state"}, nil),
		pending: prometheus.NewDesc("tollgate_approvals_pending",
			"Approvals waiting for a human's decision whose TTL has not passed.", nil, nil),
		truncated: prometheus.NewDesc("tollgate_state_truncated",
			"1 when the last read of a state gauge stopped at its bound and the gauge is a lower bound.", []string{"gauge"}, nil),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_state_read_errors_total",
			Help: "Reads of the stores for a state gauge (holds, approvals) that failed; that gauge is left out of the scrape."}, []string{"gauge"}),
	}
	s.errors.WithLabelValues("holds")
	s.errors.WithLabelValues("approvals")
	o.reg.MustRegister(s)
}

type stateCollector struct {
	cfg                              StateConfig
	holds, pending, truncated        *prometheus.Desc
	errors                           *prometheus.CounterVec
	mu                               sync.Mutex
	read                             time.Time // when the stores were last read
	held, expired, waiting           int64
	holdsOK, pendingOK               bool
	holdsTruncated, pendingTruncated bool
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.holds
	ch <- s.pending
	ch <- s.truncated
	s.errors.Describe(ch)
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.read.IsZero() || now.Sub(s.read) >= s.cfg.Every || now.Before(s.read) {
		s.refresh()
		s.read = now
	}
	if s.holdsOK {
		ch <- prometheus.MustNewConstMetric(s.holds, prometheus.GaugeValue, float64(s.held), "held")
		ch <- prometheus.MustNewConstMetric(s.holds, prometheus.GaugeValue, float64(s.expired), "expired")
		ch <- prometheus.MustNewConstMetric(s.truncated, prometheus.GaugeValue, b2f(s.holdsTruncated), "holds")
	}
	if s.pendingOK {
		ch <- prometheus.MustNewConstMetric(s.pending, prometheus.GaugeValue, float64(s.waiting))
		ch <- prometheus.MustNewConstMetric(s.truncated, prometheus.GaugeValue, b2f(s.pendingTruncated), "approvals")
	}
	s.errors.Collect(ch)
}

// refresh reads both stores, each within the timeout.
func (s *stateCollector) refresh() {
	if s.cfg.Holds != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		held, expired, trunc, err := s.cfg.Holds(ctx)
		cancel()
		s.holdsOK = err == nil
		if err != nil {
			s.errors.WithLabelValues("holds").Inc()
		} else {
			s.held, s.expired, s.holdsTruncated = held, expired, trunc
		}
	}
	if s.cfg.Pending != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		n, trunc, err := s.cfg.Pending(ctx)
		cancel()
		s.pendingOK = err == nil
		if err != nil {
			s.errors.WithLabelValues("approvals").Inc()
		} else {
			s.waiting, s.pendingTruncated = n, trunc
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
