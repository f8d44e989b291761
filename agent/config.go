package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"

	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Config configures a TokenSource.
type Config struct {
	// Issuer is tollgate's base URL (http://127.0.0.1:7420 for `make
	// run`); exchanges go to Issuer + "/oauth/token".
	Issuer string
	// Actor is the agent's attestation, sent as actor_token.
	Actor Attestor
	// Subject is whom the agent acts for: the human's token (a user IdP's
	// ID or access token) or an upstream agent's task token. Nil: the agent
	// acts for itself (self mode), sending its attestation as the subject
	// and no actor.
	Subject oauth2.TokenSource
	// SubjectTokenType is the subject token's RFC 8693 type. Default: the
	// subject token's "issued_token_type" extra (DevLogin and TokenSource
	// set it), else id_token.
	SubjectTokenType string

	// Scope asks for these scopes; nil asks for none, which gets what the
	// subject and policy allow. Asking beyond that is refused, never
	// silently narrowed.
	Scope []string
	// Resources are the domains the token may touch (tollgate:resources).
	// Nil names none: a first task token may then only read its account,
	// a sub-agent's inherits its parent's.
	Resources []string
	// Budgets are task budgets per provider (tollgate:spend). A provider
	// left out gets none on a first task token, the parent's on a
	// sub-agent's.
	Budgets []Budget
	// Resource is the RFC 8707 resource; empty means the server's own MCP
	// URL, the only one it issues tokens for.
	Resource string
	// Description describes the task, for the audit trail (one line,
	// at most 200 bytes).
	Description string

	// HTTPClient makes the exchanges; default a client with a 30s timeout.
	// Redirects are never followed.
	HTTPClient *http.Client
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// RefreshBefore is how long before expiry a token is exchanged again;
	// default 1m, at most half of the token's lifetime.
	RefreshBefore time.Duration
	// Jitter adds up to this much random lead to each refresh, so agents
	// started together do not exchange together; default 15s. A negative
	// value turns it off.
	Jitter time.Duration
}

// Budget is a task budget at one provider: at most Amount in Currency
// (a decimal string such as "20.00"; no floats).
type Budget struct {
	Provider string // cloudflare or stripe
	Amount   string
	Currency string // usd, eur or gbp
}

const (
	defaultRefreshBefore = time.Minute
	defaultJitter        = 15 * time.Second
	exchangeTimeout      = 30 * time.Second
	maxDescription       = 200
)

// validate fills defaults and checks cfg, and renders its
// authorization_details.
func (cfg *Config) validate() (tokenURL, details string, err error) {
	bad := func(format string, a ...any) (string, string, error) {
		return "", "", &Error{Op: "config", Code: Misconfigured, Description: fmt.Sprintf(format, a...)}
	}
	u, perr := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return bad("Config.Issuer %q must be tollgate's base URL, like http://127.0.0.1:7420", cfg.Issuer)
	}
	if cfg.Actor == nil {
		return bad("Config.Actor is required: the agent's attestation (JWTFile, AttestorFunc or, in the sandbox, DevAttestor)")
	}
	for _, s := range cfg.Scope {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return bad("Config.Scope entry %q is not a scope token; give one scope per entry, e.g. dns:read", s)
		}
	}
	if len(cfg.Description) > maxDescription || strings.ContainsAny(cfg.Description, "\x00\r\n") {
		return bad("Config.Description must be one line of at most %d bytes", maxDescription)
	}
	if cfg.RefreshBefore < 0 {
		return bad("Config.RefreshBefore must not be negative")
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = defaultRefreshBefore
	}
	switch {
	case cfg.Jitter == 0:
		cfg.Jitter = defaultJitter
	case cfg.Jitter < 0:
		cfg.Jitter = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: exchangeTimeout}
	}
	// The exchange's form carries the human's token and the attestation: a
	// redirect must not carry them anywhere (a 307 would resend the body).
	hc := *cfg.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = &hc
	details, derr := authorizationDetails(cfg.Resources, cfg.Budgets)
	if derr != "" {
		return bad("%s", derr)
	}
	return strings.TrimRight(cfg.Issuer, "/") + "/oauth/token", details, nil
}

// authorizationDetails renders Resources and Budgets as RFC 9396
// authorization_details (SPEC §4.2); "" when neither is set. The server
// validates domains; amounts are checked here so a typo fails before any
// request.
func authorizationDetails(domains []string, budgets []Budget) (string, string) {
	type entry struct {
		Type      string   `json:"type"`
		Domains   []string `json:"domains,omitempty"`
		Provider  string   `json:"provider,omitempty"`
		MaxAmount string   `json:"max_amount,omitempty"`
		Currency  string   `json:"currency,omitempty"`
	}
	var out []entry
	if domains != nil {
		if len(domains) == 0 {
			return "", "Resources is empty; leave it nil to name no domains"
		}
		for _, d := range domains {
			if d == "" || strings.ContainsAny(d, " \t\r\n/") {
				return "", fmt.Sprintf("Resources entry %q is not a domain name like shop.example", d)
			}
		}
		out = append(out, entry{Type: "tollgate:resources", Domains: domains})
	}
	seen := map[string]bool{}
	for _, b := range budgets {
		if b.Provider == "" || seen[b.Provider] {
			return "", fmt.Sprintf("Budgets: give each provider (cloudflare, stripe) at most once, got %q", b.Provider)
		}
		seen[b.Provider] = true
		m, err := money.Parse(b.Amount, b.Currency)
		if err != nil {
			return "", fmt.Sprintf("Budgets[%s]: %v", b.Provider, err)
		}
		out = append(out, entry{Type: "tollgate:spend", Provider: b.Provider, MaxAmount: m.Decimal(), Currency: m.Currency})
	}
	if out == nil {
		return "", ""
	}
	j, _ := json.Marshal(out)
	return string(j), ""
}
