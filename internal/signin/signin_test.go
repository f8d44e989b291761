package signin_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/oidctest"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// redirect is never served: the tests read the code off the IdP's redirect.
const redirect = "http://127.0.0.1:9/callback"

func setup(t *testing.T) (*oidctest.Provider, *signin.Client) {
	t.Helper()
	p := oidctest.Start(t, oidctest.Config{ClientID: "tollgate", ClientSecret: "s3cret", RedirectURIs: []string{redirect},
		Users: map[string]string{"alice@example.com": "u-alice"}})
	c, err := signin.New(signin.Config{Issuer: p.Issuer, ClientID: "tollgate", ClientSecret: "s3cret", RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

var idField = regexp.MustCompile(`name="id" value="([^"]+)"`)

// authorize plays the browser at the provider: it opens the authorization
// URL, signs in as email and returns the code the provider sends back.
func authorize(t *testing.T, p *oidctest.Provider, authURL, email string) string {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "127.0.0.1:9" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := idField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no login page at the provider:\n%s", page)
	}
	resp, err = hc.PostForm(p.Issuer+"/login", url.Values{"id": {string(m[1])}, "email": {email}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("the provider sent the browser to %q, want the redirect URI with a code", resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func TestSignIn(t *testing.T) {
	p, c := setup(t)
	ctx := context.Background()
	u, req, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.Parse(u)
	if q.Query().Get("nonce") != req.Nonce || q.Query().Get("state") != req.State || q.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization URL %s does not carry this request's nonce, state and S256 challenge", u)
	}
	if q.Query().Has("code_verifier") || q.Query().Get("code_challenge") == req.Verifier {
		t.Fatal("the verifier leaves the server")
	}
	id, err := c.Finish(ctx, req, authorize(t, p, u, "alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Principal() != "user:u-alice" || !id.Expiry.After(time.Now()) {
		t.Fatalf("signed in as %+v, want user:u-alice (the sub, not the e-mail)", id)
	}
}

func TestFinishRefuses(t *testing.T) {
	p, c := setup(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func()
		finish func(req signin.Request, code string) (signin.Identity, error)
		code   fault.Code
	}{
		{"replayed code", nil, func(req signin.Request, code string) (signin.Identity, error) {
			if _, err := c.Finish(ctx, req, code); err != nil {
				t.Fatal(err)
			}
			return c.Finish(ctx, req, code)
		}, fault.Unauthenticated},
		{"wrong verifier (the code of another sign-in)", nil, func(req signin.Request, code string) (signin.Identity, error) {
			_, other, _ := c.Begin(ctx)
			req.Verifier = other.Verifier
			return c.Finish(ctx, req, code)
		}, fault.Unauthenticated},
		{"wrong nonce", nil, func(req signin.Request, code string) (signin.Identity, error) {
			req.Nonce = "the-nonce-of-another-sign-in"
			return c.Finish(ctx, req, code)
		}, fault.Unauthenticated},
		{"ID token with another nonce", func() { p.SetNonce("injected") }, func(req signin.Request, code string) (signin.Identity, error) {
			return c.Finish(ctx, req, code)
		}, fault.Unauthenticated},
		{"ID token for another audience", func() { p.SetAudience([]string{"another-client"}) }, func(req signin.Request, code string) (signin.Identity, error) {
			return c.Finish(ctx, req, code)
		}, fault.Unauthenticated},
		{"ID token for us and another, authorized for the other", func() { p.SetAudience([]string{"another-client", "tollgate"}) },
			func(req signin.Request, code string) (signin.Identity, error) { return c.Finish(ctx, req, code) }, fault.Unauthenticated},
		// The control: a re-signed token for us is accepted, so the two
		// above fail on their audience, not on the re-signing.
		{"re-signed ID token for us", func() { p.SetAudience([]string{"tollgate", "another-client"}) },
			func(req signin.Request, code string) (signin.Identity, error) { return c.Finish(ctx, req, code) }, ""},
		{"no code", nil, func(req signin.Request, _ string) (signin.Identity, error) {
			return c.Finish(ctx, req, "")
		}, fault.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
				defer func() { p.SetNonce(""); p.SetAudience(nil) }()
			}
			u, req, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tc.finish(req, authorize(t, p, u, "alice@example.com"))
			testkit.WantCode(t, err, tc.code)
		})
	}
}

func TestProviderUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := signin.New(signin.Config{Issuer: "http://" + addr, ClientID: "tollgate", RedirectURL: redirect,
		HTTP: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Begin(context.Background())
	testkit.WantCode(t, err, fault.Unavailable)
	_, err = c.Finish(context.Background(), signin.Request{State: "s", Nonce: "n", Verifier: "v"}, "code")
	testkit.WantCode(t, err, fault.Unavailable)
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]signin.Config{
		"no issuer":        {ClientID: "c", RedirectURL: redirect},
		"relative issuer":  {Issuer: "/idp", ClientID: "c", RedirectURL: redirect},
		"no client":        {Issuer: "https://idp.example", RedirectURL: redirect},
		"no redirect":      {Issuer: "https://idp.example", ClientID: "c"},
		"ftp redirect URI": {Issuer: "https://idp.example", ClientID: "c", RedirectURL: "ftp://x/cb"},
	} {
		if _, err := signin.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
