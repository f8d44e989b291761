// Package observe is tollgate's telemetry: Prometheus metrics on its own
// registry, OpenTelemetry traces (OTLP over HTTP, configured by the
// standard OTEL_* variables) and the log handler that ties a log line to
// its trace.
//
// No label ever carries a principal, an e-mail, a session or any other
// value a caller chooses: tool names and codes are checked against the
// known sets and everything else is counted as "other", so the number of
// series is bounded whatever callers send.
package observe

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Other is the label value of a tool, code, step or provider not in the
// known set.
const Other = "other"

// Outcomes of a tool call.
const (
	OutcomeOK            = "ok"
	OutcomeRefused       = "refused"
	OutcomeInputRequired = "input_required"
	OutcomeReplayed      = "replayed"
)

// Steps of the guard, the values of the step label.
var Steps = []string{"token", "scopes", "resources", "pre", "tenant", "quote", "gate", "admit", "handler", "settle"}

// Providers tollgate calls.
var Providers = []string{"cloudflare", "stripe"}

// Observer holds one tollgate's metrics and tracer. A nil *Observer
// records nothing, so code paths built without one (tests, the benchmark's
// bare mode) need no checks.
type Observer struct {
	reg    *prometheus.Registry
	tracer trace.Tracer

	toolCalls       *prometheus.CounterVec
	guardStep       *prometheus.HistogramVec
	providerCalls   *prometheus.CounterVec
	providerSeconds *prometheus.HistogramVec
	exchanges       *prometheus.CounterVec
	spend           *prometheus.CounterVec
	redisErrors     prometheus.Counter
	refusals        *prometheus.CounterVec
	waitShort       *prometheus.CounterVec

	mu    sync.RWMutex
	tools map[string]bool
}

// Config configures New.
type Config struct {
	Version string
	Mode    string
	// Tracer is where spans go (nil: none are recorded).
	Tracer trace.Tracer
}

// New builds an Observer with its own registry (never the global one).
func New(cfg Config) *Observer {
	reg := prometheus.NewRegistry()
	tr := cfg.Tracer
	if tr == nil {
		tr = noop.NewTracerProvider().Tracer("tollgate")
	}
	o := &Observer{reg: reg, tracer: tr, tools: map[string]bool{}}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	o.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_tool_calls_total",
		Help: "Tool calls by tool, outcome (ok, refused, input_required, replayed) and refusal code."}, []string{"tool", "outcome", "code"})
	o.guardStep = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_guard_step_seconds",
		Help:    "Time spent in each step of the guard a tool call runs through.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"step"})
	o.providerCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_provider_calls_total",
		Help: "HTTP requests to a provider by provider, operation (the tool that made it) and result (2xx, 3xx, 4xx, 5xx, error)."}, []string{"provider", "operation", "result"})
	o.providerSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_provider_call_seconds",
		Help: "Duration of HTTP requests to a provider.", Buckets: prometheus.DefBuckets}, []string{"provider"})
	o.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_token_exchanges_total",
		Help: "Token exchanges by mode (delegation, impersonation, self, refresh) and result (ok or the OAuth error code)."}, []string{"mode", "result"})
	o.spend = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_spend_minor_total",
		Help: "Money committed to providers by this replica, in minor units of the charge's currency."}, []string{"provider"})
	o.redisErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_redis_errors_total",
		Help: "Redis commands and pipelines that failed (a missing key is not an error)."})
	o.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_refusals_total",
		Help: "Requests the HTTP edge refused before the guard (no or invalid token, limits, scopes) by code."}, []string{"code"})
	o.waitShort = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_redis_wait_short_total",
		Help: "Writes fewer Redis replicas acknowledged than --redis-wait-replicas within --redis-wait-timeout, by phase: admit (the hold was released and the call refused), settle (the commit was kept: the provider had charged), renewal (Stripe was answered 503 and retries)."}, []string{"phase"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollgate_build_info",
		Help: "Always 1: the running tollgate's version, Go version and mode."}, []string{"version", "goversion", "mode"})
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build.WithLabelValues(cfg.Version, goVersion, cfg.Mode).Set(1)
	for _, c := range []prometheus.Collector{o.toolCalls, o.guardStep, o.providerCalls, o.providerSeconds,
		o.exchanges, o.spend, o.redisErrors, o.refusals, o.waitShort, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return o
}

// Registry is the Observer's registry.
func (o *Observer) Registry() *prometheus.Registry { return o.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (o *Observer) Handler() http.Handler {
	return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{Registry: o.reg})
}

// MustRegister adds collectors (the state gauges) to the registry.
func (o *Observer) MustRegister(cs ...prometheus.Collector) { o.reg.MustRegister(cs...) }

// KnowTools sets the tool names that may appear as label values; a call
// of any other name is counted as "other".
func (o *Observer) KnowTools(names ...string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range names {
		o.tools[n] = true
	}
}

// ToolLabel is name if it is a known tool, else "other".
func (o *Observer) ToolLabel(name string) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.tools[name] {
		return name
	}
	return Other
}

var knownCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range fault.Registry() {
		m[string(s.Code)] = true
	}
	return m
}()

// CodeLabel is code if it is a registered code (or empty), else "other".
func CodeLabel(code string) string {
	if code == "" || knownCodes[code] {
		return code
	}
	return Other
}

func oneOf(v string, set []string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return Other
}

// ToolCall counts a finished tool call.
func (o *Observer) ToolCall(tool, outcome, code string) {
	if o == nil {
		return
	}
	o.toolCalls.WithLabelValues(o.ToolLabel(tool), oneOf(outcome, []string{OutcomeOK, OutcomeRefused, OutcomeInputRequired, OutcomeReplayed}), CodeLabel(code)).Inc()
}

// Exchange counts a token exchange. result is "ok" or the OAuth error code.
func (o *Observer) Exchange(mode, result string) {
	if o == nil {
		return
	}
	mode = oneOf(mode, []string{"delegation", "impersonation", "self", "refresh", "unknown"})
	if result != "ok" {
		result = oneOf(result, []string{"invalid_request", "invalid_grant", "invalid_target", "invalid_scope",
			"access_denied", "unauthorized_client", "unsupported_grant_type", "invalid_client", "server_error", "temporarily_unavailable"})
	}
	o.exchanges.WithLabelValues(mode, result).Inc()
}

// Spent counts money a provider took (minor units).
func (o *Observer) Spent(provider string, minor int64) {
	if o == nil || minor <= 0 {
		return
	}
	o.spend.WithLabelValues(oneOf(provider, Providers)).Add(float64(minor))
}

// Refused counts a request the HTTP edge refused.
func (o *Observer) Refused(code string) {
	if o == nil {
		return
	}
	o.refusals.WithLabelValues(CodeLabel(code)).Inc()
}

// WaitPhases are the phases whose writes may wait for replicas.
var WaitPhases = []string{"admit", "settle", "renewal"}

// RedisWaitShort counts a write fewer replicas acknowledged than asked.
func (o *Observer) RedisWaitShort(phase string) {
	if o == nil {
		return
	}
	o.waitShort.WithLabelValues(oneOf(phase, WaitPhases)).Inc()
}

// providerCall records one HTTP request to a provider.
func (o *Observer) providerCall(provider, operation string, status int, err error, d time.Duration) {
	if o == nil {
		return
	}
	result := "error"
	switch {
	case err != nil:
	case status >= 200 && status < 300:
		result = "2xx"
	case status >= 300 && status < 400:
		result = "3xx"
	case status >= 400 && status < 500:
		result = "4xx"
	case status >= 500:
		result = "5xx"
	}
	p := oneOf(provider, Providers)
	o.providerCalls.WithLabelValues(p, o.ToolLabel(operation), result).Inc()
	o.providerSeconds.WithLabelValues(p).Observe(d.Seconds())
}

// RedisHook counts failed Redis commands (redis.Nil, a missing key, is an
// answer, not an error).
func (o *Observer) RedisHook() redis.Hook { return redisHook{o} }

type redisHook struct{ o *Observer }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(err)
		return err
	}
}

func (h redisHook) count(err error) {
	if err == nil || errors.Is(err, redis.Nil) || h.o == nil {
		return
	}
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		return // answered by loading the script, not a failure
	}
	if strings.Contains(err.Error(), "unknown subcommand 'setinfo'") {
		return // go-redis names itself on connect and ignores a server that cannot be told
	}
	h.o.redisErrors.Inc()
}
