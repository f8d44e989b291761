// Package config is tollgate's one validated configuration. Flags (and their
// TOLLGATE_* environment twins) fill a Config; Validate refuses a bad value
// naming the flag and the fix, before anything starts.
package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Mode is sandbox (fixtures, embedded Redis, dev identity) or production.
type Mode string

const (
	Sandbox    Mode = "sandbox"
	Production Mode = "production"
)

// Config is the whole configuration of one tollgate process.
type Config struct {
	Mode Mode

	// HTTP surface.
	Addr           string   // listen address, e.g. 127.0.0.1:7420
	PublicURL      string   // issuer and base of the canonical resource URL; default from Addr
	AllowedHosts   []string // Host header allow-list (DNS-rebinding protection); default from Addr and PublicURL
	AllowedOrigins []string // Origin allow-list for browser requests; default the PublicURL origin
	MaxBodyBytes   int64    // request body limit (413 beyond)

	// Redis: single, Sentinel or Cluster URL. Empty in sandbox mode starts an embedded Redis.
	RedisURL string
	// RedisCA is a PEM file of the CA(s) that sign the Redis servers'
	// certificates (rediss:// URLs only); empty trusts the system roots.
	RedisCA string
	// RedisWaitReplicas, when above 0, is how many replicas must
	// acknowledge a hold, a commit and a Stripe renewal (Redis WAIT, in the
	// same round trip) within RedisWaitTimeout; 0 waits for none.
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration

	// Tokens.
	TokenTTL time.Duration // default lifetime of issued task tokens

	LogLevel string // debug, info, warn, error
	// LogFormat is text or json (one JSON object per line).
	LogFormat string

	// Money. Caps are per provider per principal per UTC month ("stripe=50.00");
	// a provider not listed gets the default of 100.00 USD.
	Caps    []string
	HoldTTL time.Duration
	// HandlerDeadline bounds a tool's provider work (a registration's
	// polling included); IdempotencyLock is how long a running call keeps
	// its idempotency key. Together with HoldTTL they must nest: a
	// provider call ends before its hold can expire and free the money,
	// and the key is kept until the hold is gone (Validate).
	HandlerDeadline time.Duration
	IdempotencyLock time.Duration
	RateSession     int    // metered calls per minute per task session
	RateUser        int    // metered calls per minute per principal
	ConfirmAbove    string // purchases at or above this (USD) ask the human first
	// CapMax is the highest a human may raise a month's cap to through the
	// cap_raise gate (USD); "0" turns the gate off.
	CapMax string
	// FormGates is how form-mode gates (purchase, production, terms, cap_raise) are
	// answered: "elicit" (the MCP client shows the form; it trusts the
	// client to put it before a human) or "approval" (the human decides on
	// the approvals page or an operator with the CLI; an agent that runs
	// its own client cannot answer for them). Empty: approval in
	// production, elicit in the sandbox (Validate).
	FormGates string

	// Identity. PolicyFile is a Cedar policy (sandbox default: embedded).
	PolicyFile string
	// The user IdP whose tokens are subject tokens (production; the sandbox
	// uses its dev IdP): issuer, the audience tollgate is registered as, and
	// a JWKS file with its keys.
	IdPIssuer, IdPAudience, IdPJWKS string
	// The approvals page's OpenID Connect client at that IdP (authorization
	// code with PKCE; redirect <PublicURL>/approvals/callback). Without a
	// client id the sandbox signs humans in at its own dev IdP, and
	// production has no sign-in (approvals go through the CLI). The secret
	// is empty for a public client.
	IdPClientID, IdPClientSecret string
	// The workload issuer whose JWTs attest agents (SPIFFE JWT-SVID,
	// Kubernetes service-account or CI OIDC), with its trust bundle.
	AttestIssuer, AttestAudience, AttestJWKS string

	ShutdownTimeout time.Duration

	// Limits per principal, so that one agent cannot exhaust a replica.
	// Legacy (2025-11-25) MCP sessions: how long an idle one is kept, and
	// how many one principal may have open. Requests in flight on one
	// replica, per principal and per task session. Approvals one
	// principal may have asked for within an approval's lifetime.
	MCPSessionIdle          time.Duration
	MCPSessionsPerPrincipal int
	InflightPerPrincipal    int
	InflightPerSession      int
	PendingApprovals        int
	// HTTP server limits against slow or oversized clients: headers must
	// arrive within ReadHeaderTimeout, the body within BodyTimeout; an
	// idle keep-alive connection closes after IdleTimeout; request
	// headers are at most MaxHeaderBytes. (No whole-request read timeout:
	// net/http would cancel long tool calls and streams with it.)
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConnections bounds the connections a replica holds open at once;
	// more wait in the listen backlog, so that a flood of connections
	// cannot exhaust file descriptors or memory.
	MaxConnections int
	// MetricsToken, when set, is the bearer token /metrics asks for.
	// MetricsAddr, when set, serves /metrics on its own listener (and not
	// on the main one).
	MetricsToken string

	// StripeWebhookSecret is the signing secret (whsec_…) of the Stripe
	// endpoint POST /webhooks/stripe; empty: the endpoint answers 503.
	StripeWebhookSecret string
	MetricsAddr         string

	// SandboxProvidersFrom is another sandbox replica's base URL whose fake
	// providers this one uses, so that sandbox replicas on one Redis are one
	// system (sandbox only, loopback only).
	SandboxProvidersFrom string

	// Providers. ProviderTimeout bounds each request to Cloudflare or
	// Stripe (it must be shorter than HandlerDeadline, Validate);
	// CloudflareAPIURL and StripeAPIURL replace the providers' API roots
	// in production (a fake or stripe-mock in tests; empty: the real API).
	ProviderTimeout  time.Duration
	CloudflareAPIURL string
	StripeAPIURL     string
}

// Default returns the sandbox defaults.
func Default() Config {
	return Config{
		Mode:            Sandbox,
		Addr:            "127.0.0.1:7420",
		MaxBodyBytes:    1 << 20,
		TokenTTL:        10 * time.Minute,
		LogLevel:        "info",
		LogFormat:       "text",
		HoldTTL:         15 * time.Minute,
		HandlerDeadline: 5 * time.Minute,
		IdempotencyLock: 20 * time.Minute,
		ConfirmAbove:    "20.00",
		CapMax:          "500.00",
		RateSession:     60,
		RateUser:        120,
		ShutdownTimeout: 10 * time.Second,

		MCPSessionIdle:          30 * time.Minute,
		MCPSessionsPerPrincipal: 64,
		InflightPerPrincipal:    64,
		InflightPerSession:      32,
		PendingApprovals:        50,
		ReadHeaderTimeout:       10 * time.Second,
		BodyTimeout:             30 * time.Second,
		IdleTimeout:             2 * time.Minute,
		MaxHeaderBytes:          64 << 10,
		MaxConnections:          4096,

		ProviderTimeout: 30 * time.Second,

		RedisWaitTimeout: 500 * time.Millisecond,
	}
}

// FieldError names the flag that holds a bad value and how to fix it.
type FieldError struct {
	Flag string
	Msg  string
}

func (e *FieldError) Error() string {
	env := "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(e.Flag, "-", "_"))
	return fmt.Sprintf("--%s (or %s): %s", e.Flag, env, e.Msg)
}

// The bounds of --redis-wait-replicas and --redis-wait-timeout.
const (
	MaxWaitReplicas = 16
	MinWaitTimeout  = 10 * time.Millisecond
	MaxWaitTimeout  = time.Second
)

// holdMargin is how much longer than the handler deadline a hold lives:
// settling after the deadline takes a few Redis calls.
const holdMargin = time.Minute

// Validate checks every field and fills the defaults derived from others.
// It returns the first problem as a *FieldError.
func (c *Config) Validate() error {
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return &FieldError{"metrics-token", "is shorter than 16 characters; use a long random token (openssl rand -hex 32)"}
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr {
		return &FieldError{"metrics-addr", "is the same as --addr; give metrics their own address, or leave it empty to serve /metrics on --addr"}
	}
	switch c.Mode {
	case Sandbox, Production:
	default:
		return &FieldError{"mode", fmt.Sprintf("unknown mode %q; use --sandbox (default) or --production", c.Mode)}
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" {
		return &FieldError{"addr", fmt.Sprintf("%q is not host:port; use e.g. 127.0.0.1:7420", c.Addr)}
	}
	if c.PublicURL == "" {
		h := host
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(h, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return &FieldError{"public-url", fmt.Sprintf("%q is not an absolute http(s) URL without query; use e.g. https://tollgate.example.com", c.PublicURL)}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Mode == Sandbox && !isLoopback(u.Hostname()) {
		// The sandbox's dev identity mints any principal: its tokens and
		// keys must never be accepted by a deployment reachable by others.
		return &FieldError{"public-url", fmt.Sprintf("%q is not a loopback address; the sandbox (with its dev identity) only serves this machine. Use --production for a shared deployment", c.PublicURL)}
	}
	if c.Mode == Production {
		if u.Scheme != "https" && !isLoopback(u.Hostname()) {
			return &FieldError{"public-url", "production needs an https public URL (tokens are bearer credentials); put tollgate behind TLS"}
		}
		if c.RedisURL == "" {
			return &FieldError{"redis-url", "production needs a shared Redis; give redis://, rediss:// or a Sentinel/Cluster URL"}
		}
	}
	if c.RedisURL != "" {
		ru, err := url.Parse(c.RedisURL)
		if err != nil || !validRedisScheme(ru.Scheme) {
			return &FieldError{"redis-url", fmt.Sprintf("%q is not a redis://, rediss://, unix://, redis(s)+sentinel:// or redis(s)+cluster:// URL", redact(c.RedisURL))}
		}
	}
	if err := c.validateRedisCA(); err != nil {
		return err
	}
	if c.RedisWaitReplicas < 0 || c.RedisWaitReplicas > MaxWaitReplicas {
		return &FieldError{"redis-wait-replicas", fmt.Sprintf("%d is out of range; use 0..%d (replicas that must acknowledge a hold or a commit; 0 waits for none)", c.RedisWaitReplicas, MaxWaitReplicas)}
	}
	if c.RedisWaitTimeout < MinWaitTimeout || c.RedisWaitTimeout > MaxWaitTimeout {
		return &FieldError{"redis-wait-timeout", fmt.Sprintf("%s is out of range; use %s..%s (how long a hold or a commit waits for --redis-wait-replicas)", c.RedisWaitTimeout, MinWaitTimeout, MaxWaitTimeout)}
	}
	if c.Mode == Production {
		if c.PolicyFile == "" {
			return &FieldError{"policy", "production needs a Cedar policy file saying which agents may act for whom"}
		}
		if c.IdPIssuer == "" || c.IdPJWKS == "" {
			return &FieldError{"idp-issuer", "production needs the user IdP: --idp-issuer and --idp-jwks (a JWKS file)"}
		}
		if c.AttestIssuer == "" || c.AttestJWKS == "" {
			return &FieldError{"attest-issuer", "production needs a workload issuer: --attest-issuer and --attest-jwks (its trust bundle)"}
		}
	}
	if (c.IdPIssuer == "") != (c.IdPJWKS == "") {
		return &FieldError{"idp-jwks", "--idp-issuer and --idp-jwks go together"}
	}
	if (c.AttestIssuer == "") != (c.AttestJWKS == "") {
		return &FieldError{"attest-jwks", "--attest-issuer and --attest-jwks go together"}
	}
	if c.IdPAudience == "" {
		c.IdPAudience = c.PublicURL
	}
	if c.AttestAudience == "" {
		c.AttestAudience = c.PublicURL
	}
	if len(c.AllowedHosts) == 0 {
		c.AllowedHosts = defaultHosts(c.Addr, u)
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return &FieldError{"allowed-hosts", fmt.Sprintf("%q is not a host or host:port", h)}
		}
	}
	if len(c.AllowedOrigins) == 0 {
		c.AllowedOrigins = []string{u.Scheme + "://" + u.Host}
	}
	for _, o := range c.AllowedOrigins {
		ou, err := url.Parse(o)
		if err != nil || ou.Scheme == "" || ou.Host == "" || ou.Path != "" {
			return &FieldError{"allowed-origins", fmt.Sprintf("%q is not an origin like https://app.example.com", o)}
		}
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		return &FieldError{"max-body-bytes", fmt.Sprintf("%d is out of range; use 1024..67108864", c.MaxBodyBytes)}
	}
	if c.TokenTTL < 30*time.Second || c.TokenTTL > time.Hour {
		return &FieldError{"token-ttl", fmt.Sprintf("%s is out of range; use 30s..1h (task tokens are short-lived)", c.TokenTTL)}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &FieldError{"log-format", fmt.Sprintf("%q is not text or json", c.LogFormat)}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &FieldError{"log-level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel)}
	}
	if c.HandlerDeadline < time.Minute || c.HandlerDeadline > time.Hour {
		return &FieldError{"handler-deadline", fmt.Sprintf("%s is out of range; use 1m..1h (longer than --provider-timeout, %s)", c.HandlerDeadline, c.ProviderTimeout)}
	}
	if err := c.validateProviders(); err != nil {
		return err
	}
	if c.HoldTTL < c.HandlerDeadline+holdMargin {
		return &FieldError{"hold-ttl", fmt.Sprintf("%s must exceed --handler-deadline (%s) by at least %s: a hold that expires while its provider call runs frees money a charge may still take", c.HoldTTL, c.HandlerDeadline, holdMargin)}
	}
	if c.IdempotencyLock < c.HoldTTL {
		return &FieldError{"idempotency-lock", fmt.Sprintf("%s must be at least --hold-ttl (%s): a retry that starts while the first call's hold lives could charge twice", c.IdempotencyLock, c.HoldTTL)}
	}
	if c.IdempotencyLock > 24*time.Hour {
		return &FieldError{"idempotency-lock", fmt.Sprintf("%s is longer than the 24h an idempotency record is kept", c.IdempotencyLock)}
	}
	if c.HoldTTL < time.Minute || c.HoldTTL > 24*time.Hour {
		return &FieldError{"hold-ttl", fmt.Sprintf("%s is out of range; use 1m..24h (how long a crashed call's hold blocks the cap)", c.HoldTTL)}
	}
	if c.RateSession < 1 || c.RateSession > 10000 {
		return &FieldError{"rate-session", "use 1..10000 calls per minute"}
	}
	if c.RateUser < c.RateSession || c.RateUser > 100000 {
		return &FieldError{"rate-user", "use at least --rate-session and at most 100000 calls per minute"}
	}
	if c.IdPClientID != "" && c.IdPIssuer == "" {
		return &FieldError{"idp-client-id", "the approvals page signs in at --idp-issuer: give it too (and --idp-jwks)"}
	}
	if c.IdPClientSecret != "" && c.IdPClientID == "" {
		return &FieldError{"idp-client-secret", "a client secret needs its --idp-client-id"}
	}
	if c.FormGates == "" {
		// Once humans sign in to the approvals page, a production gate
		// is answered there, never by whatever MCP client the agent runs.
		c.FormGates = "elicit"
		if c.Mode == Production {
			c.FormGates = "approval"
		}
	}
	if c.FormGates != "elicit" && c.FormGates != "approval" {
		return &FieldError{"form-gates", fmt.Sprintf("%q is neither elicit nor approval", c.FormGates)}
	}
	if _, err := money.Parse(c.ConfirmAbove, "usd"); err != nil {
		return &FieldError{"confirm-above", fmt.Sprintf("%q is not an amount like 20.00 (USD): %v", c.ConfirmAbove, err)}
	}
	if _, err := money.Parse(c.CapMax, "usd"); err != nil {
		return &FieldError{"cap-max", fmt.Sprintf("%q is not an amount like 500.00 (USD; 0 turns the cap_raise gate off): %v", c.CapMax, err)}
	}
	if c.SandboxProvidersFrom != "" {
		u, err := url.Parse(c.SandboxProvidersFrom)
		host := ""
		if err == nil {
			host = u.Hostname()
		}
		if c.Mode != Sandbox || err != nil || u.Scheme != "http" || (host != "localhost" && (net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback())) {
			return &FieldError{"sandbox-providers-from", "only a sandbox replica may share another's fake providers, given as its loopback base URL, e.g. http://127.0.0.1:7420"}
		}
	}
	if c.ShutdownTimeout <= 0 {
		return &FieldError{"shutdown-timeout", "must be positive, e.g. 10s"}
	}
	return c.validateLimits()
}

// validateLimits checks the per-principal and HTTP limits.
func (c *Config) validateLimits() error {
	ints := []struct {
		flag      string
		v, lo, hi int
		what      string
	}{
		{"mcp-sessions-per-principal", c.MCPSessionsPerPrincipal, 1, 100000, "legacy MCP sessions one principal may have open"},
		{"inflight-per-principal", c.InflightPerPrincipal, 1, 100000, "requests one principal may have in flight on a replica"},
		{"inflight-per-session", c.InflightPerSession, 1, 100000, "requests one task session may have in flight on a replica"},
		{"pending-approvals", c.PendingApprovals, 1, 100000, "approvals one principal may have pending"},
		{"max-header-bytes", c.MaxHeaderBytes, 4 << 10, 1 << 20, "bytes of request headers"},
		{"max-connections", c.MaxConnections, 16, 1 << 20, "connections a replica holds open at once"},
	}
	for _, l := range ints {
		if l.v < l.lo || l.v > l.hi {
			return &FieldError{l.flag, fmt.Sprintf("%d is out of range; use %d..%d (%s)", l.v, l.lo, l.hi, l.what)}
		}
	}
	if c.InflightPerSession > c.InflightPerPrincipal {
		return &FieldError{"inflight-per-session", fmt.Sprintf("%d exceeds --inflight-per-principal (%d): a session is one of its principal's", c.InflightPerSession, c.InflightPerPrincipal)}
	}
	durs := []struct {
		flag   string
		v, lo  time.Duration
		hi     time.Duration
		reason string
	}{
		{"mcp-session-idle", c.MCPSessionIdle, time.Minute, 24 * time.Hour, "how long an idle legacy MCP session is kept"},
		{"read-header-timeout", c.ReadHeaderTimeout, time.Second, 5 * time.Minute, "how long a client may take to send its request headers"},
		{"body-timeout", c.BodyTimeout, time.Second, time.Hour, "how long a client may take to send a request's body"},
		{"idle-timeout", c.IdleTimeout, time.Second, time.Hour, "how long an idle keep-alive connection is kept"},
	}
	for _, d := range durs {
		if d.v < d.lo || d.v > d.hi {
			return &FieldError{d.flag, fmt.Sprintf("%s is out of range; use %s..%s (%s)", d.v, d.lo, d.hi, d.reason)}
		}
	}
	return nil
}

// ResourceURL is the canonical MCP resource URL (RFC 8707 / RFC 9728).
func (c *Config) ResourceURL() string { return c.PublicURL + "/mcp" }

func defaultHosts(addr string, public *url.URL) []string {
	hosts := []string{public.Host}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" || isLoopback(host) {
		for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
			hosts = append(hosts, h+":"+port)
		}
	} else {
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts
}

func isLoopback(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// redact hides a password in a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// RedactedRedisURL returns the Redis URL with any password hidden, for logs.
func (c *Config) RedactedRedisURL() string { return redact(c.RedisURL) }

func validRedisScheme(s string) bool {
	switch s {
	case "redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+sentinel", "rediss+cluster":
		return true
	}
	return false
}

// validateRedisCA checks --redis-ca: a readable PEM file with at least one
// certificate, given only with a TLS Redis URL (rediss://…).
func (c *Config) validateRedisCA() error {
	if c.RedisCA == "" {
		return nil
	}
	if !strings.HasPrefix(c.RedisURL, "rediss") {
		return &FieldError{"redis-ca", fmt.Sprintf("a CA file needs a TLS Redis: give --redis-url as rediss://, rediss+sentinel:// or rediss+cluster:// (it is %q)", redact(c.RedisURL))}
	}
	pem, err := os.ReadFile(c.RedisCA)
	if err != nil {
		return &FieldError{"redis-ca", fmt.Sprintf("cannot read %s (%v); give the PEM file of the CA that signs the Redis servers' certificates", c.RedisCA, err)}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return &FieldError{"redis-ca", fmt.Sprintf("%s holds no PEM certificate; give the CA's certificate (-----BEGIN CERTIFICATE-----)", c.RedisCA)}
	}
	return nil
}

// validateProviders checks the provider settings: the timeout of one
// provider request is shorter than the handler deadline (a call's provider
// work ends, and its hold settles, before the deadline), and API roots
// replaced only in production, with https or loopback http.
func (c *Config) validateProviders() error {
	if c.ProviderTimeout < 10*time.Millisecond || c.ProviderTimeout > 10*time.Minute {
		return &FieldError{"provider-timeout", fmt.Sprintf("%s is out of range; use 10ms..10m (how long one request to Cloudflare or Stripe may take)", c.ProviderTimeout)}
	}
	if c.ProviderTimeout >= c.HandlerDeadline {
		return &FieldError{"provider-timeout", fmt.Sprintf("%s must be shorter than --handler-deadline (%s): a provider request must end before its tool call's deadline, or the call is cut off while the provider may still charge", c.ProviderTimeout, c.HandlerDeadline)}
	}
	for _, p := range []struct{ flag, v string }{{"cloudflare-api-url", c.CloudflareAPIURL}, {"stripe-api-url", c.StripeAPIURL}} {
		if p.v == "" {
			continue
		}
		if c.Mode != Production {
			return &FieldError{p.flag, "only production calls a provider's API; the sandbox uses its own fakes (see --sandbox-providers-from)"}
		}
		u, err := url.Parse(p.v)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return &FieldError{p.flag, fmt.Sprintf("%q is not an https URL (or http to a loopback host) without query or credentials; use e.g. https://api.example.test/v1", redact(p.v))}
		}
	}
	return nil
}
