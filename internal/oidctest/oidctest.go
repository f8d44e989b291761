// Package oidctest starts an independent OpenID Provider for tests of
// tollgate's sign-in: zitadel/oidc's OpenID-certified pkg/op, on a loopback
// httptest server, with the smallest storage it accepts (modelled on the
// module's example/server) and a one-field login page. Nothing in it is
// tollgate's code, so a test that signs in here checks tollgate's client
// against somebody else's reading of the specifications.
//
// It is for tests only: it keeps everything in memory, signs with a key it
// generates, and lets a test make it misbehave (SetAudience, SetNonce).
package oidctest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Config is the provider's one client and its users.
type Config struct {
	ClientID, ClientSecret string
	RedirectURIs           []string
	// Users maps what is typed on the login page to the subject (sub) the
	// provider asserts: a company IdP's sub is rarely the e-mail address.
	Users map[string]string
}

// Provider is a running OpenID Provider.
type Provider struct {
	Issuer string // its URL, loopback
	store  *storage
}

// Start serves a provider until the test ends.
func Start(t testing.TB, cfg Config) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &storage{cfg: cfg, key: key, kid: random(), requests: map[string]*authRequest{}, codes: map[string]string{}}
	var crypto [32]byte
	_, _ = rand.Read(crypto[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: crypto, CodeMethodS256: true, AuthMethodPost: true},
		s, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		_ = loginPage.Execute(w, r.URL.Query().Get("id"))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sub, known := cfg.Users[r.PostFormValue("email")]
		if !known || !s.authenticate(r.PostFormValue("id"), sub) {
			http.Error(w, "unknown user or sign-in", http.StatusForbidden)
			return
		}
		http.Redirect(w, r, issuer+"/authorize/callback?id="+r.PostFormValue("id"), http.StatusFound)
	})
	mux.Handle("POST /oauth/token", s.reissue(provider))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, store: s}
}

// SetAudience makes the provider issue ID tokens for aud (and azp aud[0])
// instead of the requesting client, signed with its own key (nil: the
// client again). pkg/op itself always adds the client to the audience, so
// the token endpoint's answer is re-signed.
func (p *Provider) SetAudience(aud []string) { p.store.set(func(s *storage) { s.audience = aud }) }

// SetNonce makes the provider put nonce in ID tokens instead of the one
// the client sent ("": the client's again).
func (p *Provider) SetNonce(nonce string) { p.store.set(func(s *storage) { s.nonce = nonce }) }

// reissue serves the token endpoint, re-signing the ID token for another
// audience while SetAudience is in force.
func (s *storage) reissue(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		aud := s.audience
		s.mu.Unlock()
		if aud == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			http.Error(w, "oidctest: the token endpoint failed", http.StatusInternalServerError)
			return
		}
		raw, _ := body["id_token"].(string)
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		var claims map[string]any
		if err != nil || json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims) != nil {
			http.Error(w, "oidctest: no ID token to re-sign", http.StatusInternalServerError)
			return
		}
		claims["aud"], claims["azp"] = aud, aud[0]
		payload, _ := json.Marshal(claims)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.kid))
		if err == nil {
			if jws, err = signer.Sign(payload); err == nil {
				body["id_token"], err = jws.CompactSerialize()
			}
		}
		if err != nil {
			http.Error(w, "oidctest: re-signing failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	})
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html><html><head><title>Sign in</title></head><body>
<form method="post" action="/login"><input type="hidden" name="id" value="{{.}}">
<label>E-mail <input type="email" name="email"></label><button type="submit">Sign in</button></form></body></html>`))

// storage is op.Storage in memory.
type storage struct {
	cfg Config
	key *ecdsa.PrivateKey
	kid string

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code → request id
	audience []string
	nonce    string
}

var _ op.Storage = (*storage)(nil)

func (s *storage) set(f func(*storage)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *storage) authenticate(id, sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if ok {
		r.subject, r.done, r.authTime = sub, true, time.Now()
	}
	return ok
}

var errNotFound = errors.New("oidctest: not found")

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &authRequest{id: random(), req: *req, nonce: req.Nonce}
	if s.nonce != "" {
		r.nonce = s.nonce
	}
	s.requests[r.id] = r
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.requests[id]; ok {
		return r, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.set(func(s *storage) { s.codes[code] = id })
	return nil
}

// DeleteAuthRequest runs once the code is redeemed: the code is then used.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.set(func(s *storage) {
		delete(s.requests, id)
		for c, rid := range s.codes {
			if rid == id {
				delete(s.codes, c)
			}
		}
	})
	return nil
}

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return random(), time.Now().Add(5 * time.Minute), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("oidctest: no refresh tokens")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s}, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.cfg.ClientID {
		return nil, errNotFound
	}
	return client{s.cfg}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		return errors.New("oidctest: client authentication failed")
	}
	return nil
}

// SetUserinfoFromScopes names the subject: pkg/op copies the userinfo
// into the ID token, sub included.
func (s *storage) SetUserinfoFromScopes(_ context.Context, u *oidc.UserInfo, sub, _ string, _ []string) error {
	u.Subject = sub
	return nil
}

func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// authRequest is op.AuthRequest.
type authRequest struct {
	id       string
	req      oidc.AuthRequest
	nonce    string
	subject  string
	done     bool
	authTime time.Time
}

func (r *authRequest) GetID() string          { return r.id }
func (r *authRequest) GetACR() string         { return "" }
func (r *authRequest) GetAMR() []string       { return []string{"pwd"} }
func (r *authRequest) GetClientID() string    { return r.req.ClientID }
func (r *authRequest) GetAudience() []string  { return []string{r.req.ClientID} }
func (r *authRequest) GetAuthTime() time.Time { return r.authTime }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.req.CodeChallenge, Method: r.req.CodeChallengeMethod}
}
func (r *authRequest) GetNonce() string                   { return r.nonce }
func (r *authRequest) GetRedirectURI() string             { return r.req.RedirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType { return r.req.ResponseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode { return r.req.ResponseMode }
func (r *authRequest) GetScopes() []string                { return r.req.Scopes }
func (r *authRequest) GetState() string                   { return r.req.State }
func (r *authRequest) GetSubject() string                 { return r.subject }
func (r *authRequest) Done() bool                         { return r.done }

// client is op.Client: a confidential web client, allowed http redirect
// URIs (DevMode) because the tests run on loopback.
type client struct{ cfg Config }

func (c client) GetID() string                       { return c.cfg.ClientID }
func (c client) RedirectURIs() []string              { return slices.Clone(c.cfg.RedirectURIs) }
func (c client) PostLogoutRedirectURIs() []string    { return nil }
func (c client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c client) LoginURL(id string) string    { return "/login?id=" + id }
func (c client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c client) IDTokenLifetime() time.Duration { return 5 * time.Minute }
func (c client) DevMode() bool                  { return true }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) IsScopeAllowed(string) bool           { return false }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c client) ClockSkew() time.Duration             { return 0 }

type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k signingKey) Key() any                                    { return k.s.key }
func (k signingKey) ID() string                                  { return k.s.kid }

type publicKey struct{ s *storage }

func (k publicKey) ID() string                         { return k.s.kid }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.s.key.PublicKey }

func random() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
