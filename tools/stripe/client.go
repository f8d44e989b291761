package stripe

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const (
	// DefaultBaseURL is Stripe's API.
	DefaultBaseURL = "https://api.stripe.com"
	// SecretKeyEnv is the environment variable the server reads the secret
	// key from in production. It is never a flag: flags show in ps.
	SecretKeyEnv = "STRIPE_SECRET_KEY"
	// MetadataPrincipal is the customer metadata key naming the tollgate
	// principal a Stripe customer belongs to.
	MetadataPrincipal = "tollgate_principal"

	defaultTimeout = 30 * time.Second
	// maxIdempotencyKey is Stripe's limit on Idempotency-Key.
	maxIdempotencyKey = 255
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root; DefaultBaseURL if empty. The sandbox points
	// it at the fixtures/stripe fake. It must be https, or plain http to a
	// loopback host.
	BaseURL string
	// SecretKey is the Stripe secret or restricted key, sk_… or rk_…
	// (production: from SecretKeyEnv).
	SecretKey string
	// HTTPClient is copied, never modified; http.DefaultTransport if nil.
	HTTPClient *http.Client
	// Timeout bounds each request; 30s if zero.
	Timeout time.Duration
	// TestClock, when set (the sandbox only), puts every customer tollgate
	// creates on this Stripe test clock, so that `tollgate dev advance`
	// can renew their subscriptions.
	TestClock string
}

// Client calls Stripe through stripe-go. It is safe for concurrent use.
type Client struct {
	api       *client.API
	timeout   time.Duration
	testClock string
}

// NewClient validates cfg and builds a stripe-go client of its own: a
// backend with this base URL, network retries off and logging off. It
// never touches stripe-go's global backends (stripe.SetBackend), so two
// clients with different URLs can live in one process.
func NewClient(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkKey(cfg.SecretKey); err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, configError("Timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	backend := stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:        stripego.String(base),
		HTTPClient: httpClient(cfg.HTTPClient),
		// SPEC §11: stripe-go retries 409s, 5xx and connection errors
		// twice by default. With a caller's fixed idempotency key that is
		// safe at Stripe, but the caller must see the first failure to
		// release its hold honestly, so the one retry policy is the
		// caller's.
		MaxNetworkRetries: stripego.Int64(0),
		// The default logger prints request errors to stderr; the adapter
		// returns them instead.
		LeveledLogger:   &stripego.LeveledLogger{Level: stripego.LevelNull},
		EnableTelemetry: stripego.Bool(false),
	})
	return &Client{api: client.New(cfg.SecretKey, &stripego.Backends{API: backend}), timeout: timeout, testClock: cfg.TestClock}, nil
}

func configError(msg string) error {
	return fault.New(fault.InvalidArgument, "stripe: "+msg)
}

func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", configError("BaseURL must be an absolute URL without credentials, query or fragment, e.g. " + DefaultBaseURL)
	}
	if u.Path != "" && u.Path != "/" {
		// stripe-go adds /v1/… itself.
		return "", configError("BaseURL must have no path, e.g. " + DefaultBaseURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// The secret key travels in every request: plain http only to this host.
		if !loopback(u.Hostname()) {
			return "", configError("BaseURL may use plain http only for a loopback host (the sandbox fake); use https")
		}
	default:
		return "", configError("BaseURL must be https")
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func checkKey(key string) error {
	if key == "" {
		return configError("a secret key is required; set " + SecretKeyEnv)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return configError("the secret key has whitespace or non-printable characters; check " + SecretKeyEnv)
		}
	}
	// A publishable key (pk_…) cannot create anything; say so rather than
	// let every call fail with 401. The key itself is never echoed.
	if !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_") {
		return configError("the key in " + SecretKeyEnv + " must be a secret (sk_…) or restricted (rk_…) key")
	}
	return nil
}

// httpClient copies c into the shared provider client: every exchange
// recorded, redirects refused so that neither a POST nor the key is ever
// re-sent elsewhere.
func httpClient(c *http.Client) *http.Client {
	return provider.NewClient(provider.Config{HTTPClient: c, RequestIDHeader: "Request-Id", Name: "stripe"})
}

// call runs one stripe-go request under the client's timeout and
// translates its failure. prepare receives the context to put in the
// request's params; run sends it. With network retries off, stripe-go
// sends each request once, and Go's transport re-sends a POST only when
// nothing of it was written, so Stripe sees each call at most once.
func (c *Client) call(ctx context.Context, o op, prepare func(context.Context), run func() error) (provider.Seen, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, ex := provider.Record(ctx)
	prepare(ctx)
	err := run()
	s := ex.Seen()
	if err != nil {
		return s, c.translate(ctx, o, s, err)
	}
	if s.Status < 200 || s.Status > 299 {
		// A 1xx or 3xx answer that stripe-go decoded without complaint.
		return s, unreadable(o, newCallError(o, s, nil))
	}
	return s, nil
}

// checkIdemKey refuses an empty or oversized key: stripe-go would invent a
// random one for an empty key, which defeats a retry (SPEC §9.2).
func checkIdemKey(key string) error {
	if key == "" || len(key) > maxIdempotencyKey {
		return fault.New(fault.InvalidArgument, "stripe: an idempotency key of 1 to 255 characters is required for every Stripe POST")
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return fault.New(fault.InvalidArgument, "stripe: the idempotency key must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkID refuses an object id that is not prefix_ plus letters, digits
// and underscores, so that nothing else reaches a Stripe URL path.
func checkID(what, id, prefix string) error {
	ok := strings.HasPrefix(id, prefix) && len(id) > len(prefix) && len(id) <= 255
	for i := 0; ok && i < len(id); i++ {
		ch := id[i]
		ok = ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
	}
	if !ok {
		return fault.Newf(fault.InvalidArgument, "stripe: %s must be a Stripe id starting with %s", what, prefix)
	}
	return nil
}
