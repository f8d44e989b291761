package cloudflare

// Directory is the account-connection protocol seen from tollgate's OAuth
// client: whether Cloudflare has an account for an e-mail, the terms it
// publishes, and the creation of an account for a person who accepted
// them, with a grant on it for the client.
//
//	GET  /oauth2/terms
//	GET  /oauth2/accounts?email=…        (client authentication, HTTP Basic)
//	POST /oauth2/accounts                (client authentication, form)
//
// Cloudflare's public API documents none of these: they are what the
// sandbox's fake serves (fixtures/cloudflare, connect.go). A deployment
// against real Cloudflare has no Directory, so account_connect links an
// existing account by OAuth consent and never creates one.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// DirectoryConfig configures a Directory.
type DirectoryConfig struct {
	// BaseURL is the root the OAuth endpoints hang under (the fake's URL).
	BaseURL      string
	ClientID     string
	ClientSecret string
	// Scopes asked for a created account's grant.
	Scopes     []string
	HTTPClient *http.Client // copied, never modified; nil: a client with Timeout
	Timeout    time.Duration
}

// Directory asks the account-connection endpoints.
type Directory struct {
	cfg  DirectoryConfig
	http *http.Client
}

// NewDirectory checks cfg.
func NewDirectory(cfg DirectoryConfig) (*Directory, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, configError("the account directory needs the OAuth client id and secret")
	}
	cfg.BaseURL = base
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	c := provider.NewClient(provider.Config{HTTPClient: cfg.HTTPClient, RequestIDHeader: "cf-ray", Name: "cloudflare"})
	c.Timeout = cfg.Timeout
	return &Directory{cfg: cfg, http: c}, nil
}

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 64 << 10

// AccountExists reports whether Cloudflare has an account for email.
func (d *Directory) AccountExists(ctx context.Context, email string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cfg.BaseURL+"/oauth2/accounts?"+url.Values{"email": {email}}.Encode(), nil)
	if err != nil {
		return false, fault.Wrap(err, fault.InvalidArgument, "the e-mail cannot be asked about; nothing was changed")
	}
	d.authenticate(req)
	var out struct {
		Exists *bool `json:"exists"`
	}
	if err := d.do(req, "the account lookup", &out, http.StatusOK); err != nil {
		return false, err
	}
	if out.Exists == nil {
		return false, fault.New(ProviderError, "Cloudflare's account lookup answered without saying; nothing was changed. Retry later.")
	}
	return *out.Exists, nil
}

// Terms returns the terms Cloudflare publishes now.
func (d *Directory) Terms(ctx context.Context) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cfg.BaseURL+"/oauth2/terms", nil)
	if err != nil {
		return "", "", fault.Wrap(err, fault.Internal, "the terms cannot be asked for")
	}
	var out struct {
		URL     string `json:"url"`
		Version string `json:"version"`
	}
	if err := d.do(req, "reading Cloudflare's terms", &out, http.StatusOK); err != nil {
		return "", "", err
	}
	if out.Version == "" || !strings.HasPrefix(out.URL, "https://") {
		return "", "", fault.New(ProviderError, "Cloudflare published its terms without a version or an https address; nothing was changed. Retry later.")
	}
	return sanitize(out.URL), sanitize(out.Version), nil
}

// CreateAccount creates an account for email whose owner accepted the
// terms of version, and returns the account and the grant on it. The POST
// is sent once; its error says whether it may have reached Cloudflare.
func (d *Directory) CreateAccount(ctx context.Context, email, name, version string) (links.CloudflareLink, error) {
	form := url.Values{"email": {email}, "name": {name}, "terms_version": {version}, "scope": {strings.Join(d.cfg.Scopes, " ")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.BaseURL+"/oauth2/accounts", strings.NewReader(form.Encode()))
	if err != nil {
		return links.CloudflareLink{}, fault.Wrap(err, fault.Internal, "the account cannot be asked for")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	d.authenticate(req)
	var out struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		AccountID    string `json:"account_id"`
	}
	if err := d.do(req, "creating a Cloudflare account for "+email, &out, http.StatusCreated); err != nil {
		return links.CloudflareLink{}, err
	}
	if !isAccountID(out.AccountID) || out.AccessToken == "" {
		return links.CloudflareLink{}, fault.New(ProviderError, "Cloudflare answered the account creation without an account or a credential; the account may exist now: run account_connect again (it links an existing account).")
	}
	tok := &oauth2.Token{AccessToken: out.AccessToken, TokenType: out.TokenType, RefreshToken: out.RefreshToken}
	if out.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second)
	}
	return links.CloudflareLink{AccountID: out.AccountID, Token: tok}, nil
}

// authenticate adds the client's id and secret, form-encoded, with HTTP
// Basic (RFC 6749 §2.3.1).
func (d *Directory) authenticate(req *http.Request) {
	req.SetBasicAuth(url.QueryEscape(d.cfg.ClientID), url.QueryEscape(d.cfg.ClientSecret))
}

// do sends req and decodes a want-status answer into out; any other
// answer is an error with the RFC 6749 error code Cloudflare sent.
func (d *Directory) do(req *http.Request, what string, out any, want int) error {
	ctx, ex := provider.Record(req.Context())
	res, err := d.http.Do(req.WithContext(ctx))
	if err != nil {
		ce := newCallError("directory", ex.Seen(), err)
		msg := fmt.Sprintf("Cloudflare did not answer %s; nothing was changed. Retry later.", what)
		switch {
		case !ce.Reached && req.Method != http.MethodGet:
			msg = fmt.Sprintf("Cloudflare was not reached for %s; nothing was sent, so nothing was changed. Retry later.", what)
		case req.Method != http.MethodGet:
			msg = fmt.Sprintf("Cloudflare did not answer %s; it may have been done. Run account_connect again: it links an account that exists.", what)
		}
		return fault.Wrap(ce, ProviderError, msg)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	ce := newCallError("directory", ex.Seen(), nil)
	if res.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		ce.ProviderMessages = []string{sanitize(e.Error)}
		switch e.Error {
		case "account_exists":
			return fault.Wrap(ce, ProviderRefused, "Cloudflare already has an account for this e-mail; nothing was created. Run account_connect without create to link it.")
		case "terms_outdated":
			return fault.Wrap(ce, ProviderRefused, "Cloudflare's terms changed while the human was asked; nothing was created. Run account_connect again to see the current terms.")
		case "access_denied":
			return fault.Wrap(ce, ProviderRefused, "Cloudflare does not let this server create accounts; nothing was created. The human can create one at Cloudflare, then run account_connect.")
		}
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf("Cloudflare refused %s (HTTP %d %s); nothing was changed.", what, res.StatusCode, sanitize(e.Error)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf("Cloudflare's answer to %s is unreadable; nothing was changed here. Retry later.", what))
	}
	return nil
}
