package provider

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"

	"github.com/tollgate-dev/tollgate/internal/observe"
)

// MaxErrorBody bounds how much of a non-2xx answer is kept.
const MaxErrorBody = 64 << 10

// Config configures NewClient.
type Config struct {
	// HTTPClient is copied, never modified; a zero http.Client (so
	// http.DefaultTransport, no timeout) if nil.
	HTTPClient *http.Client
	// RequestIDHeader names the answer header by which the provider
	// identifies the request, for the audit trail: cf-ray at Cloudflare,
	// Request-Id at Stripe. Empty records none.
	RequestIDHeader string
	// Inner, if set, wraps the client's own transport inside the recording
	// one, e.g. to set the acting account's credential on each request.
	Inner func(http.RoundTripper) http.RoundTripper
	// Name is the provider ("cloudflare", "stripe"): each request made
	// inside a tool call is then counted, timed and traced under it.
	Name string
}

// NewClient returns a copy of cfg.HTTPClient that records every exchange
// sent under a Record context and follows no redirect: a 3xx comes back as
// the answer, so neither a POST nor a credential is ever re-sent to another
// address.
func NewClient(cfg Config) *http.Client {
	out := &http.Client{}
	if cfg.HTTPClient != nil {
		*out = *cfg.HTTPClient
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if cfg.Inner != nil {
		base = cfg.Inner(base)
	}
	if cfg.Name != "" {
		base = observe.Transport(cfg.Name, base)
	}
	out.Transport = &transport{base: base, requestID: cfg.RequestIDHeader}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return out
}

// Exchange is what the transport saw of one call. SDKs keep little of it:
// cloudflare-go's Raw drops the status and cf-ray, stripe-go loses the
// status and Request-Id of an answer that is not Stripe's JSON.
type Exchange struct {
	mu   sync.Mutex
	seen Seen
}

// Seen is a snapshot of an Exchange.
type Seen struct {
	// Wrote: the request's headers were written to the wire.
	Wrote bool
	// Status is the answer's HTTP status; 0 when no answer came.
	Status     int
	RequestID  string // the Config's RequestIDHeader of the answer
	RetryAfter string // the answer's Retry-After
	// Header is the answer's header (nil when no answer came).
	Header http.Header
	// Body is a non-2xx answer's body, at most MaxErrorBody bytes.
	Body []byte
}

// Reached reports whether the request reached, or may have reached, the
// provider: once its headers are written, or an answer came, the provider
// may have acted on it.
func (s Seen) Reached() bool { return s.Wrote || s.Status != 0 }

// Seen returns what the transport has recorded so far.
func (e *Exchange) Seen() Seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

func (e *Exchange) markWrote() {
	e.mu.Lock()
	e.seen.Wrote = true
	e.mu.Unlock()
}

type exchangeKey struct{}

// Record returns a context under which a request sent through a NewClient
// client is recorded in the returned Exchange. Use one per call: the
// clients send each request once (no retries, no redirects), and Go's
// transport re-sends one by itself only when nothing of it was written.
func Record(ctx context.Context) (context.Context, *Exchange) {
	ex := &Exchange{}
	ctx = context.WithValue(ctx, exchangeKey{}, ex)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: ex.markWrote})
	return ctx, ex
}

type transport struct {
	base      http.RoundTripper
	requestID string
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	ex, _ := req.Context().Value(exchangeKey{}).(*Exchange)
	if ex == nil || res == nil {
		return res, err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	s := &ex.seen
	s.Status, s.Header, s.RetryAfter = res.StatusCode, res.Header.Clone(), res.Header.Get("Retry-After")
	if t.requestID != "" {
		s.RequestID = res.Header.Get(t.requestID)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		// Keep the provider's message, and release the connection: an SDK
		// with retries off may neither read nor close a 5xx or 429 body.
		b, _ := io.ReadAll(io.LimitReader(res.Body, MaxErrorBody))
		_ = res.Body.Close()
		s.Body = b
		res.Body = io.NopCloser(bytes.NewReader(b))
	}
	return res, err
}
