package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	cf "github.com/cloudflare/cloudflare-go"
	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const (
	// DefaultBaseURL is Cloudflare's v4 API.
	DefaultBaseURL = "https://api.cloudflare.com/client/v4"
	defaultTimeout = 30 * time.Second
	// defaultRPS is Cloudflare's global API limit, 1200 requests per five
	// minutes, as the SDK assumes too.
	defaultRPS = 4
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root; DefaultBaseURL if empty. The sandbox points
	// it at the fixtures/cloudflare fake. It must be https, or plain http to
	// a loopback host.
	BaseURL string
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

// Client calls Cloudflare. A Client from NewClient holds no credential and
// refuses every call; As gives one that acts in one account with that
// account's own credential. Both are safe for concurrent use.
type Client struct {
	api     *cf.API
	account string
	tokens  oauth2.TokenSource // nil: no credential, every call is refused
	timeout time.Duration
	catalog *catalog.Catalog
}

// Credential is one Cloudflare account and the credential that acts in it:
// the OAuth token of the human who linked it (refreshed by Token), or, in
// tests, a static API token.
type Credential struct {
	AccountID string
	Token     oauth2.TokenSource
}

// As returns a client acting in cred's account with cred's token. There is
// no other way to send a request: tollgate holds no Cloudflare credential
// of its own for tool calls.
func (c *Client) As(cred Credential) (*Client, error) {
	if !isAccountID(cred.AccountID) {
		return nil, configError("the account id must be 32 lowercase hexadecimal digits")
	}
	if cred.Token == nil {
		return nil, configError("an account needs a credential")
	}
	out := *c
	out.account, out.tokens = cred.AccountID, cred.Token
	return &out, nil
}

// Account is the account c acts in ("" for a client without credential).
func (c *Client) Account() string { return c.account }

// NewClient validates cfg and builds the SDK client with retries off.
func NewClient(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
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
	// The SDK wants a token; the real one is set per request by the
	// transport from the acting account's credential (authTransport).
	api, err := cf.NewWithAPIToken("unset",
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
	return &Client{api: api, timeout: timeout, catalog: cat}, nil
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

// httpClient copies c into the shared provider client: every exchange
// recorded, redirects refused so that neither a POST nor the token is ever
// re-sent elsewhere, and the acting account's credential set per request.
func httpClient(c *http.Client) *http.Client {
	return provider.NewClient(provider.Config{HTTPClient: c, RequestIDHeader: "cf-ray", Name: "cloudflare",
		Inner: func(base http.RoundTripper) http.RoundTripper { return &authTransport{base: base} }})
}

// bearerKey carries the acting account's access token to authTransport.
type bearerKey struct{}

// authTransport sets the request's credential: the access token of the
// account the client acts in, never a shared one. A request without one is
// not sent (fail closed).
type authTransport struct{ base http.RoundTripper }

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, _ := req.Context().Value(bearerKey{}).(string)
	if tok == "" {
		return nil, errNoCredential
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(req)
}

var errNoCredential = errors.New("cloudflare: no account credential for this request")

// credential fetches the acting account's access token (refreshing it when
// it expired) and puts it where authTransport finds it. Nothing is sent
// when there is none.
func (c *Client) credential(ctx context.Context) (context.Context, error) {
	if c.tokens == nil {
		return ctx, fault.New(fault.Internal, "cloudflare: this client acts in no account; nothing was sent")
	}
	tok, err := c.tokens.Token()
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return ctx, err
		}
		return ctx, fault.Wrap(err, fault.AccountRelinkRequired,
			"the linked Cloudflare account's credential could not be used or refreshed; the human has to link the account again (account_connect). Nothing was sent or charged.")
	}
	if tok == nil || tok.AccessToken == "" {
		return ctx, fault.New(fault.AccountRelinkRequired,
			"the linked Cloudflare account has no usable credential; the human has to link it again (account_connect). Nothing was sent or charged.")
	}
	return context.WithValue(ctx, bearerKey{}, tok.AccessToken), nil
}

// call sends one request through the SDK and returns the envelope's result.
// Go's transport itself re-sends a POST only when nothing of it was
// written, so the provider sees each call at most once.
func (c *Client) call(ctx context.Context, o op, method, path string, body []byte, hdr http.Header) (json.RawMessage, string, error) {
	res, ray, err := c.callOnce(ctx, o, method, path, body, hdr)
	if c.renewAfter(err) {
		res, ray, err = c.callOnce(ctx, o, method, path, body, hdr)
		c.rejectAfter(err)
	}
	return res, ray, err
}

// rejectAfter: a renewed credential that is still refused is dead; the
// human has to link the account again, and until then no call asks.
func (c *Client) rejectAfter(err error) {
	if rj, ok := c.tokens.(interface{ Reject() }); ok && fault.CodeOf(err) == fault.AccountRelinkRequired && provider.Reached(err) {
		rj.Reject()
	}
}

// renewAfter reports whether err is Cloudflare refusing a credential that
// can be renewed, and marks it spent: the request was refused before
// anything was done, so it is sent once more with a renewed one.
func (c *Client) renewAfter(err error) bool {
	inv, ok := c.tokens.(interface{ Invalidate() })
	if !ok || fault.CodeOf(err) != fault.AccountRelinkRequired || !provider.Reached(err) {
		return false
	}
	inv.Invalidate()
	return true
}

func (c *Client) callOnce(ctx context.Context, o op, method, path string, body []byte, hdr http.Header) (json.RawMessage, string, error) {
	ctx, err := c.credential(ctx)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, ex := provider.Record(ctx)
	var data any
	if body != nil {
		data = body
	}
	res, err := c.api.Raw(ctx, method, path, data, hdr)
	s := ex.Seen()
	ray := s.RequestID
	ce := newCallError(o.name, s, err)
	switch {
	case err != nil && s.Status == 0:
		return nil, ray, c.noAnswer(ctx, o, ce)
	case s.Status < 200 || s.Status > 299:
		ce.ProviderMessages = envelopeMessages(s.Body)
		if credentialRefused(s.Status, s.Body) {
			return nil, ray, relink(ce)
		}
		return nil, ray, badStatus(o, ce, s.RetryAfter)
	case err != nil:
		return nil, ray, unreadable(o, ce)
	case !res.Success:
		ce.ProviderMessages = messages(res.Errors)
		return nil, ray, refused(o, ce)
	}
	return res.Result, ray, nil
}

// credentialRefused reports an answer that refuses the credential itself
// (401, or Cloudflare's authentication error 10000): revoked or expired.
func credentialRefused(status int, body []byte) bool {
	if status == http.StatusUnauthorized {
		return true
	}
	if status != http.StatusForbidden {
		return false
	}
	var env struct {
		Errors []cf.ResponseInfo `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil {
		return false
	}
	for _, e := range env.Errors {
		if e.Code == 10000 {
			return true
		}
	}
	return false
}

// relink is the error of a refused credential: nothing was done with it.
func relink(ce *CallError) error {
	return fault.Wrap(ce, fault.AccountRelinkRequired,
		"Cloudflare refused the linked account's credential (revoked or expired); the human has to link the account again (account_connect). Nothing was changed or charged.")
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
