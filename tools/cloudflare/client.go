package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

const (
	// DefaultBaseURL is Cloudflare's v4 API.
	DefaultBaseURL = "https://api.cloudflare.com/client/v4"
	// APITokenEnv is the environment variable the server reads the API
	// token from in production. It is never a flag: flags show in ps.
	APITokenEnv = "CLOUDFLARE_API_TOKEN"

	defaultTimeout = 30 * time.Second
	// defaultRPS is Cloudflare's global API limit, 1200 requests per five
	// minutes, as the SDK assumes too.
	defaultRPS = 4
	// maxErrorBody bounds how much of a non-2xx answer is kept.
	maxErrorBody = 64 << 10
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root; DefaultBaseURL if empty. The sandbox points
	// it at the fixtures/cloudflare fake. It must be https, or plain http to
	// a loopback host.
	BaseURL string
	// APIToken is the Cloudflare API token (production: from APITokenEnv).
	APIToken string
	// AccountID is the Cloudflare account, 32 lowercase hex digits.
	AccountID string
	// HTTPClient is copied, never modified; http.DefaultTransport if nil.
	HTTPClient *http.Client
	// Timeout bounds each request; 30s if zero.
	Timeout time.Duration
	// RequestsPerSecond is the client-side rate limit; 4 if zero.
	RequestsPerSecond float64
	// Catalog supplies minimum registration terms per TLD, which the
	// domain-check answer does not carry; catalog.Load() if nil.
	Catalog *catalog.Catalog
}

// Client calls the Registrar API. It is safe for concurrent use.
type Client struct {
	api     *cf.API
	account string
	timeout time.Duration
	catalog *catalog.Catalog
}

// NewClient validates cfg and builds the SDK client with retries off.
func NewClient(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkToken(cfg.APIToken); err != nil {
		return nil, err
	}
	if !isAccountID(cfg.AccountID) {
		return nil, configError("AccountID must be a Cloudflare account id: 32 lowercase hexadecimal digits")
	}
	if cfg.Timeout < 0 || cfg.RequestsPerSecond < 0 {
		return nil, configError("Timeout and RequestsPerSecond must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	rps := cfg.RequestsPerSecond
	if rps == 0 {
		rps = defaultRPS
	}
	cat := cfg.Catalog
	if cat == nil {
		if cat, err = catalog.Load(); err != nil {
			return nil, fault.Wrap(err, fault.Internal, "cloudflare: the embedded catalog does not load")
		}
	}
	api, err := cf.NewWithAPIToken(cfg.APIToken,
		cf.BaseURL(base),
		cf.HTTPClient(httpClient(cfg.HTTPClient)),
		// SPEC §11: by default the SDK retries 5xx, 429 and transport errors
		// three times, which would repeat a registration POST. With
		// MaxRetries 0 its request loop runs exactly once (v0.119.0,
		// makeRequestWithAuthTypeAndHeadersComplete: i <= MaxRetries).
		cf.UsingRetryPolicy(0, 0, 0),
		cf.UsingRateLimit(rps),
		cf.UserAgent("tollgate"),
	)
	if err != nil {
		return nil, fault.Wrap(err, fault.InvalidArgument, "cloudflare: the API client could not be built")
	}
	return &Client{api: api, account: cfg.AccountID, timeout: timeout, catalog: cat}, nil
}

func configError(msg string) error {
	return fault.New(fault.InvalidArgument, "cloudflare: "+msg)
}

func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", configError("BaseURL must be an absolute URL without credentials, query or fragment, e.g. " + DefaultBaseURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// The token travels in every request: plain http only to this host.
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", configError("BaseURL may use plain http only for a loopback host (the sandbox fake); use https")
		}
	default:
		return "", configError("BaseURL must be https")
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func checkToken(tok string) error {
	if tok == "" {
		return configError("an API token is required; set " + APITokenEnv)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return configError("the API token has whitespace or non-printable characters; check " + APITokenEnv)
		}
	}
	return nil
}

func isAccountID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// httpClient copies c and wraps its transport so that each exchange is
// recorded, and refuses redirects so that neither a POST nor the token is
// ever re-sent elsewhere.
func httpClient(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = &recordingTransport{base: base}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return out
}

// exchange is what the transport saw of one call: whether the request
// reached the wire, and the answer's status, cf-ray and error body. The
// SDK's Raw keeps none of these.
type exchange struct {
	mu         sync.Mutex
	wrote      bool
	status     int
	rayID      string
	retryAfter string
	body       []byte
}

func (e *exchange) markWrote() {
	e.mu.Lock()
	e.wrote = true
	e.mu.Unlock()
}

func (e *exchange) snapshot() (wrote bool, status int, ray, retryAfter string, body []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wrote, e.status, e.rayID, e.retryAfter, e.body
}

type exchangeKey struct{}

type recordingTransport struct{ base http.RoundTripper }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil || res == nil {
		return res, err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.status, ex.rayID, ex.retryAfter = res.StatusCode, res.Header.Get("cf-ray"), res.Header.Get("Retry-After")
	if res.StatusCode < 200 || res.StatusCode > 299 {
		// With retries off the SDK neither reads nor closes a 5xx or 429
		// body; read it here so the provider's message is kept and the
		// connection is released.
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		_ = res.Body.Close()
		ex.body = b
		res.Body = io.NopCloser(bytes.NewReader(b))
	}
	return res, err
}

// call sends one request through the SDK and returns the envelope's result.
// Go's transport itself re-sends a POST only when nothing of it was
// written, so the provider sees each call at most once.
func (c *Client) call(ctx context.Context, o op, method, path string, body []byte, hdr http.Header) (json.RawMessage, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ex := &exchange{}
	ctx = context.WithValue(ctx, exchangeKey{}, ex)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: ex.markWrote})
	var data any
	if body != nil {
		data = body
	}
	res, err := c.api.Raw(ctx, method, path, data, hdr)
	wrote, status, ray, retryAfter, errBody := ex.snapshot()
	ce := &CallError{Op: o.name, HTTPStatus: status, RayID: ray, Reached: wrote || status != 0, Err: err}
	switch {
	case err != nil && status == 0:
		return nil, ray, c.noAnswer(ctx, o, ce)
	case status < 200 || status > 299:
		ce.ProviderMessages = envelopeMessages(errBody)
		return nil, ray, badStatus(o, ce, retryAfter)
	case err != nil:
		return nil, ray, unreadable(o, ce)
	case !res.Success:
		ce.ProviderMessages = messages(res.Errors)
		return nil, ray, refused(o, ce)
	}
	return res.Result, ray, nil
}

func envelopeMessages(body []byte) []string {
	var env struct {
		Errors []cf.ResponseInfo `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil
	}
	return messages(env.Errors)
}

func messages(infos []cf.ResponseInfo) []string {
	var out []string
	for _, e := range infos {
		out = append(out, sanitize(e.Message)+codeSuffix(e.Code))
	}
	return out
}
