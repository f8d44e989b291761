package observe

import (
	"context"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is the tracer provider built from the environment.
type Tracing struct {
	Provider trace.TracerProvider
	// Enabled: spans are exported.
	Enabled  bool
	shutdown func(context.Context) error
}

// Tracer is tollgate's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.Provider.Tracer("github.com/tollgate-dev/tollgate") }

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// TracingEnabled reports whether the environment asks for traces: an
// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or OTEL_TRACES_EXPORTER=otlp, and
// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none.
func TracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// NewTracing builds the tracer provider the OTEL_* environment asks for:
// OTLP over HTTP (protobuf) to OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, with
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
// and OTEL_TRACES_SAMPLER read by the SDK. With none of them set, tracing
// is off and costs nothing.
func NewTracing(ctx context.Context, version string) (*Tracing, error) {
	if !TracingEnabled(os.Getenv) {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceVersion(version)))
	if err != nil {
		res = resource.Default()
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" && !strings.Contains(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		res, _ = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName("tollgate")))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Enabled: true, shutdown: tp.Shutdown}, nil
}

// propagator reads W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Extract continues the client's trace: a W3C traceparent header on the
// request makes the server's spans its children.
func Extract(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			r = r.WithContext(propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		next.ServeHTTP(w, r)
	})
}

// TraceID is the trace id of ctx's span, "" when there is none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

type callKey struct{}

// call is what the context of a tool call carries for the steps inside it.
type call struct {
	o    *Observer
	tool string
}

// Call is a tool call being observed.
type Call struct {
	o     *Observer
	span  trace.Span
	tool  string
	start time.Time
}

// CallAttrs are a tool call's span attributes: never an e-mail, only the
// principal's id.
type CallAttrs struct {
	Principal string
	Session   string
	Actors    []string
	ClientID  string
}

// StartCall opens a tool call's span (a child of the client's traceparent
// when one came) and puts the Observer in ctx for the steps and provider
// calls inside it.
func (o *Observer) StartCall(ctx context.Context, tool string) (context.Context, *Call) {
	if o == nil {
		return ctx, nil
	}
	ctx, span := o.tracer.Start(ctx, "tools/call "+o.ToolLabel(tool), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("mcp.tool", tool)))
	ctx = context.WithValue(ctx, callKey{}, call{o: o, tool: tool})
	return ctx, &Call{o: o, span: span, tool: tool, start: time.Now()}
}

// Identify adds the caller to the call's span.
func (c *Call) Identify(a CallAttrs) {
	if c == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("tollgate.session", a.Session),
		attribute.String("tollgate.principal_id", a.Principal)}
	if len(a.Actors) > 0 {
		attrs = append(attrs, attribute.StringSlice("tollgate.agent_chain", a.Actors))
	}
	if a.ClientID != "" {
		attrs = append(attrs, attribute.String("tollgate.client_id", a.ClientID))
	}
	c.span.SetAttributes(attrs...)
}

// End counts the call and closes its span.
func (c *Call) End(outcome, code string) {
	if c == nil {
		return
	}
	c.o.ToolCall(c.tool, outcome, code)
	c.span.SetAttributes(attribute.String("tollgate.outcome", outcome))
	if code != "" {
		c.span.SetAttributes(attribute.String("tollgate.code", code))
	}
	if outcome == OutcomeRefused {
		c.span.SetStatus(codes.Error, code)
	}
	c.span.End()
}

// Step times one step of the guard inside the call of ctx: a child span
// and an observation of tollgate_guard_step_seconds. Call the returned
// function with the step's error (nil when it passed).
func Step(ctx context.Context, step string) (context.Context, func(error)) {
	cl, ok := ctx.Value(callKey{}).(call)
	if !ok || cl.o == nil {
		return ctx, func(error) {}
	}
	step = oneOf(step, Steps)
	start := time.Now()
	ctx, span := cl.o.tracer.Start(ctx, "guard."+step, trace.WithAttributes(attribute.String("tollgate.step", step)))
	return ctx, func(err error) {
		cl.o.guardStep.WithLabelValues(step).Observe(time.Since(start).Seconds())
		if err != nil {
			span.SetStatus(codes.Error, "refused")
		}
		span.End()
	}
}

// Spent counts money a provider took, on the Observer of ctx's call.
func Spent(ctx context.Context, provider string, minor int64) {
	if cl, ok := ctx.Value(callKey{}).(call); ok {
		cl.o.Spent(provider, minor)
	}
}

// Transport wraps a provider client's transport: each request is a
// child span of the call it is made in, counted and timed.
func Transport(provider string, base http.RoundTripper) http.RoundTripper {
	return &transport{provider: provider, base: base}
}

type transport struct {
	provider string
	base     http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	cl, ok := req.Context().Value(callKey{}).(call)
	if !ok || cl.o == nil {
		return t.base.RoundTrip(req)
	}
	ctx, span := cl.o.tracer.Start(req.Context(), t.provider+" "+req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("tollgate.provider", t.provider), attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname())))
	start := time.Now()
	res, err := t.base.RoundTrip(req.WithContext(ctx))
	status := 0
	if res != nil {
		status = res.StatusCode
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if err != nil || status >= 500 {
		span.SetStatus(codes.Error, "provider call failed")
	}
	span.End()
	cl.o.providerCall(t.provider, cl.tool, status, err, time.Since(start))
	return res, err
}
