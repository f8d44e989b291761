package compose

import (
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/web/approvals"
	"github.com/tollgate-dev/tollgate/web/edge"
	"github.com/tollgate-dev/tollgate/web/flows"
)

const (
	// Production OAuth client of Cloudflare (registration is not
	// self-serve: the operator receives an id and secret).
	CloudflareOAuthClientIDEnv     = "TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_ID"
	CloudflareOAuthClientSecretEnv = "TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_SECRET"
	cloudflareAuthURL              = "https://dash.cloudflare.com/oauth2/auth"
	cloudflareTokenURL             = "https://dash.cloudflare.com/oauth2/token"

	// The sandbox's OAuth client at the fake Cloudflare; not a credential
	// anywhere else.
	sandboxOAuthClientID     = "tollgate-sandbox"
	sandboxOAuthClientSecret = "tollgate-sandbox-oauth-secret"
)

// cloudflareScopes are what tollgate asks the human to allow.
var cloudflareScopes = []string{"account:read", "user:read", "zone:read", "dns_records:edit", "offline_access"}

// refusalWindow is how long identical refusals are counted into one
// audit entry.
const refusalWindow = time.Minute

// cloudflareOAuth is tollgate's OAuth client at Cloudflare: the server's
// only Cloudflare credential, used to link accounts and renew their
// tokens. Nil when not configured.
func (a *App) cloudflareOAuth() *oauth2.Config {
	redirect := a.Cfg.PublicURL + flows.CallbackPath + "/cloudflare"
	switch {
	case a.sandbox != nil:
		return &oauth2.Config{ClientID: sandboxOAuthClientID, ClientSecret: sandboxOAuthClientSecret, RedirectURL: redirect, Scopes: cloudflareScopes,
			Endpoint: a.sandbox.oauthEndpoint()}
	case os.Getenv(CloudflareOAuthClientIDEnv) != "":
		return &oauth2.Config{ClientID: os.Getenv(CloudflareOAuthClientIDEnv), ClientSecret: os.Getenv(CloudflareOAuthClientSecretEnv), RedirectURL: redirect, Scopes: cloudflareScopes,
			Endpoint: oauth2.Endpoint{AuthURL: cloudflareAuthURL, TokenURL: cloudflareTokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	}
	return nil
}

// accountConfig wires account_connect. The sandbox's fake answers the
// account-connection protocol (tools/cloudflare.Directory); against real
// Cloudflare accounts are linked by consent, never created.
func (a *App) accountConfig() (tools.AccountConfig, error) {
	cfg := tools.AccountConfig{Links: a.links, Consents: a.gates.consents, Tenancy: a.tenant}
	if a.sandbox != nil {
		d, err := cloudflare.NewDirectory(cloudflare.DirectoryConfig{BaseURL: a.money.cfBase, ClientID: sandboxOAuthClientID,
			ClientSecret: sandboxOAuthClientSecret, Scopes: cloudflareScopes, HTTPClient: &http.Client{}})
		if err != nil {
			return tools.AccountConfig{}, err
		}
		cfg.Directory = d
	}
	return cfg, nil
}

// buildSignIn is the approvals page's OpenID Connect client: at the
// configured IdP when --idp-client-id is given, else at the sandbox's own;
// nil in production without a client (approvals are then decided with the
// CLI only).
func (a *App) buildSignIn() (*signin.Client, error) {
	cfg := signin.Config{Issuer: a.Cfg.IdPIssuer, ClientID: a.Cfg.IdPClientID, ClientSecret: a.Cfg.IdPClientSecret}
	if cfg.ClientID == "" {
		dev, ok := devSignIn(a.Cfg)
		if !ok {
			return nil, nil
		}
		cfg = dev
	}
	cfg.RedirectURL = a.Cfg.PublicURL + approvals.CallbackPath
	c, err := signin.New(cfg)
	if err != nil {
		return nil, err
	}
	a.Log.Info("approvals page signs in through OpenID Connect", "issuer", cfg.Issuer, "client_id", cfg.ClientID, "redirect_uri", cfg.RedirectURL)
	return c, nil
}

// webParts are the HTTP surface's own handlers: the /mcp edge, the
// approvals page and the provider flows.
type webParts struct {
	edge      *edge.Edge
	approvals *approvals.Page
	flows     *flows.Flows
}

// buildWeb builds the edge, the approvals page and the flows on the
// stores built before them; a.Tools must be set.
func (a *App) buildWeb() (*webParts, error) {
	e, err := edge.New(edge.Config{
		PublicURL: a.Cfg.PublicURL, MaxBodyBytes: a.Cfg.MaxBodyBytes, BodyTimeout: a.Cfg.BodyTimeout,
		SessionIdle: a.Cfg.MCPSessionIdle, SessionsPerPrincipal: a.Cfg.MCPSessionsPerPrincipal,
		InFlight: limits.NewInFlight(a.Cfg.InflightPerPrincipal, a.Cfg.InflightPerSession, time.Second),
		Verifier: a.id.verifier, Sessions: a.id.sessions, Owners: a.mcpOwners, Refusals: a.refusals,
		Tools: a.Tools, Observe: a.Observe, Log: a.Log,
	})
	if err != nil {
		return nil, err
	}
	page, err := approvals.New(approvals.Config{PublicURL: a.Cfg.PublicURL, Approvals: a.gates.approvals,
		Secrets: a.secrets, States: a.flowState, Trail: a.id.trail, SignIn: a.signin, Log: a.Log})
	if err != nil {
		return nil, err
	}
	// The consented account is read with its new token alone, each request
	// bounded by --provider-timeout.
	hc := &http.Client{Timeout: a.Cfg.ProviderTimeout}
	cf, err := cloudflare.NewClient(cloudflare.Config{BaseURL: a.money.cfBase, HTTPClient: hc, Catalog: a.Catalog, Timeout: a.Cfg.ProviderTimeout})
	if err != nil {
		return nil, err
	}
	fl, err := flows.New(flows.Config{PublicURL: a.Cfg.PublicURL, Page: page, Approvals: a.gates.approvals,
		States: a.flowState, Links: a.links, Consents: a.gates.consents, Stripe: a.stripe.client, Upstream: a.money.idem,
		OAuth: a.cloudflareOAuth(), Cloudflare: cf, HTTP: hc, Log: a.Log})
	if err != nil {
		return nil, err
	}
	return &webParts{edge: e, approvals: page, flows: fl}, nil
}

func (a *App) toolByName(name string) (tools.Tool, bool) {
	for _, t := range a.Tools {
		if t.Name() == name {
			return t, true
		}
	}
	return tools.Tool{}, false
}

// Unauthenticated is how many requests this replica refused for want of a
// valid token.
func (a *App) Unauthenticated() int64 { return a.web.edge.Unauthenticated() }
