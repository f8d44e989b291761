package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// maxSubject is OpenID Connect Core §2's limit on sub; the principal ends
// up in Redis keys and the audit trail.
const maxSubject = 255

// Config is one OpenID Connect client at one provider.
type Config struct {
	Issuer       string // the provider's issuer, exactly as its discovery document names it
	ClientID     string
	ClientSecret string // empty: a public client (PKCE alone)
	RedirectURL  string // where the provider sends the browser back with the code
	// HTTP reaches the provider (discovery, token endpoint, keys); default
	// a client with a 10 s timeout.
	HTTP  *http.Client
	Clock func() time.Time // ID token expiry; default time.Now
}

func (c *Config) validate() error {
	for name, v := range map[string]string{"Issuer": c.Issuer, "RedirectURL": c.RedirectURL} {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("signin: Config.%s %q is not an absolute http(s) URL", name, v)
		}
	}
	if c.ClientID == "" {
		return errors.New("signin: Config.ClientID is required")
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

// Client signs humans in at one provider. Discovery happens on first use
// and again after a failure, so a replica that starts while the provider
// (or, in the sandbox, the replica's own listener) is not yet up still
// signs humans in once it is. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu   sync.Mutex
	disc *discovered
}

// discovered is what the provider's discovery document configures.
type discovered struct {
	oauth  *oauth2.Config
	verify *oidc.IDTokenVerifier
}

// New validates cfg. It does no I/O.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Issuer is the provider's issuer.
func (c *Client) Issuer() string { return c.cfg.Issuer }

// Request is one sign-in in flight. The caller keeps it server-side, looked
// up by State, and hands it to Finish once: the nonce and the PKCE verifier
// never leave the server.
type Request struct {
	State    string
	Nonce    string
	Verifier string
}

// Identity is who signed in.
type Identity struct {
	Subject string    // the ID token's sub at this issuer
	Expiry  time.Time // the ID token's exp
}

// Principal is tollgate's name for the human: "user:" + sub, as the token
// exchange names the subject of a user token of the same issuer.
func (id Identity) Principal() string { return "user:" + id.Subject }

func (c *Client) discover(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil {
		return c.disc, nil
	}
	// go-oidc reads the HTTP client from the context, and keeps it (not
	// the context) for fetching the provider's keys later.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.cfg.HTTP), c.cfg.Issuer)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "the identity provider could not be reached or did not describe itself (OpenID discovery); nothing was done. Retry shortly, or ask the operator to check --idp-issuer.")
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	// RFC 7636 §4.2: S256 only. A provider that lists its methods and not
	// S256 would ignore the challenge: refuse it rather than sign in
	// without PKCE.
	if err := p.Claims(&meta); err != nil || (len(meta.Methods) > 0 && !slices.Contains(meta.Methods, "S256")) {
		return nil, fault.New(fault.Unavailable, "the identity provider does not support PKCE with S256; nobody can sign in until the operator configures one that does (--idp-issuer).")
	}
	auth := oauth2.AuthStyleInHeader
	if c.cfg.ClientSecret == "" {
		auth = oauth2.AuthStyleInParams
	}
	ep := p.Endpoint()
	ep.AuthStyle = auth
	c.disc = &discovered{
		oauth: &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: c.cfg.RedirectURL,
			Endpoint: ep, Scopes: []string{oidc.ScopeOpenID}},
		// OpenID Connect Core §3.1.3.7: issuer, audience (our client id),
		// expiry and signature, with the provider's advertised algorithms.
		verify: p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Clock}),
	}
	return c.disc, nil
}

// Begin starts a sign-in: the provider's authorization URL to send the
// browser to, and the Request to keep until the callback. Refusals:
// fault.Unavailable (discovery failed).
func (c *Client) Begin(ctx context.Context) (string, Request, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", Request{}, err
	}
	req := Request{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	u := d.oauth.AuthCodeURL(req.State, oauth2.S256ChallengeOption(req.Verifier), oidc.Nonce(req.Nonce))
	return u, req, nil
}

// Finish exchanges the code of req's callback and verifies the ID token it
// yields. Refusals: fault.Unauthenticated (the provider refused the code, or
// the ID token is not one for this sign-in), fault.Unavailable (the provider
// could not be reached).
func (c *Client) Finish(ctx context.Context, req Request, code string) (Identity, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	if code == "" || req.State == "" || req.Nonce == "" || req.Verifier == "" {
		return Identity{}, refused(nil, "the sign-in came back without a code; start again.")
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTP)
	// RFC 7636 §4.5: the verifier proves this server started the sign-in.
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(req.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Identity{}, refused(err, "the identity provider refused the sign-in code (used, expired or not issued for this sign-in); start again.")
		}
		return Identity{}, fault.Wrap(err, fault.Unavailable, "the identity provider could not be reached to finish the sign-in; nothing was done. Start again shortly.")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refused(nil, "the identity provider answered without an ID token; ask the operator whether the client is an OpenID Connect client.")
	}
	idt, err := d.verify.Verify(ctx, raw)
	if err != nil {
		return Identity{}, refused(err, "the identity provider's ID token could not be verified (issuer, audience, expiry or signature); start again.")
	}
	// go-oidc leaves these two to its caller. OpenID Connect Core
	// §3.1.3.7 (11): the nonce must be this sign-in's, or the token was
	// minted for another one (replayed or injected).
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(req.Nonce)) != 1 {
		return Identity{}, refused(nil, "the ID token was not issued for this sign-in (nonce); start again.")
	}
	// §3.1.3.7 (4, 5): a token for several audiences names us as azp.
	var extra struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&extra); err != nil || (len(idt.Audience) > 1 && extra.AZP != c.cfg.ClientID) {
		return Identity{}, refused(err, "the ID token was issued to another client; start again.")
	}
	if !printableASCII(idt.Subject) {
		return Identity{}, refused(nil, "the ID token's subject is not printable ASCII of at most 255 bytes; ask the operator.")
	}
	return Identity{Subject: idt.Subject, Expiry: idt.Expiry}, nil
}

func refused(cause error, public string) error {
	if cause == nil {
		cause = errors.New(public)
	}
	return fault.Wrap(cause, fault.Unauthenticated, public)
}

func printableASCII(s string) bool {
	if s == "" || len(s) > maxSubject {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// random is 128 bits from crypto/rand, base64url.
func random() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
