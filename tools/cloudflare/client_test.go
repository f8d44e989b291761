package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const acct = "0123456789abcdef0123456789abcdef"

func TestNewClientConfig(t *testing.T) {
	ok := Config{}
	tests := []struct {
		name string
		mod  func(*Config)
		fail bool
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "loopback http for the sandbox", mod: func(c *Config) { c.BaseURL = "http://127.0.0.1:8080" }},
		{name: "localhost http", mod: func(c *Config) { c.BaseURL = "http://localhost:8080/" }},
		{name: "https elsewhere", mod: func(c *Config) { c.BaseURL = "https://api.example.test/client/v4" }},
		{name: "plain http off the host", mod: func(c *Config) { c.BaseURL = "http://api.cloudflare.com/client/v4" }, fail: true},
		{name: "credentials in the url", mod: func(c *Config) { c.BaseURL = "https://u:p@api.cloudflare.com" }, fail: true},
		{name: "query in the url", mod: func(c *Config) { c.BaseURL = "https://api.cloudflare.com/?x=1" }, fail: true},
		{name: "relative url", mod: func(c *Config) { c.BaseURL = "/client/v4" }, fail: true},
		{name: "other scheme", mod: func(c *Config) { c.BaseURL = "ftp://127.0.0.1" }, fail: true},
		{name: "negative timeout", mod: func(c *Config) { c.Timeout = -1 }, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := NewClient(cfg)
			if tt.fail != (err != nil) {
				t.Fatalf("NewClient: %v, want failure %v", err, tt.fail)
			}
			if err != nil && fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("code %s", fault.CodeOf(err))
			}
		})
	}
}

func TestAsChecksTheAccount(t *testing.T) {
	base, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tok := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})
	tests := []struct {
		name string
		cred Credential
	}{
		{name: "missing account", cred: Credential{Token: tok}},
		{name: "account with a path", cred: Credential{AccountID: "../zones/0123456789abcdef0123456", Token: tok}},
		{name: "uppercase account", cred: Credential{AccountID: strings.ToUpper(acct), Token: tok}},
		{name: "no credential", cred: Credential{AccountID: acct}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := base.As(tt.cred); fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("As: %v, want invalid_argument", err)
			}
		})
	}
}

// A client without an account's credential sends nothing: there is no
// server-wide Cloudflare credential to fall back on.
func TestNoCredentialSendsNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	base, err := NewClient(Config{BaseURL: srv.URL, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.CheckDomain(context.Background(), name(t, "shop.com")); err == nil || provider.Reached(err) {
		t.Fatalf("CheckDomain without a credential: %v", err)
	}
	if _, err := base.ZoneForDomain(context.Background(), name(t, "shop.com")); err == nil || provider.Reached(err) {
		t.Fatalf("ZoneForDomain without a credential: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server without a credential", hits.Load())
	}
}

// A credential whose refresh fails is account_relink_required, and nothing is sent.
func TestFailedRefreshSendsNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	c := asAccount(t, Config{BaseURL: srv.URL, RequestsPerSecond: 1000}, failingSource{})
	_, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
	if fault.CodeOf(err) != fault.AccountRelinkRequired || provider.Reached(err) || hits.Load() != 0 {
		t.Fatalf("code %s, reached %v, %d hits", fault.CodeOf(err), provider.Reached(err), hits.Load())
	}
}

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("refresh refused") }

// asAccount builds a client acting in acct with tokens.
func asAccount(t *testing.T, cfg Config, tokens oauth2.TokenSource) *Client {
	t.Helper()
	base, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := base.As(Credential{AccountID: acct, Token: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// priceServer answers domain-check with one registrable result priced as given.
func priceServer(t *testing.T, cost, currency string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"success":true,"errors":[],"messages":[],"result":{"domains":[{"name":"shop.com","registrable":true,"tier":"standard","pricing":{"currency":%q,"registration_cost":%q,"renewal_cost":%q}}]}}`,
			currency, cost, cost)
	}))
	t.Cleanup(srv.Close)
	return asAccount(t, Config{BaseURL: srv.URL, RequestsPerSecond: 1000}, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}))
}

func TestPriceParsing(t *testing.T) {
	tests := []struct {
		name, cost, currency string
		want                 money.Money
		fails                bool
	}{
		{name: "documented shape", cost: "11.17", currency: "USD", want: money.USD(1117)},
		{name: "whole units", cost: "10", currency: "USD", want: money.USD(1000)},
		{name: "one decimal", cost: "10.5", currency: "USD", want: money.USD(1050)},
		{name: "float trap 0.1+0.2", cost: "0.30", currency: "USD", want: money.USD(30)},
		{name: "euro", cost: "9.99", currency: "EUR", want: money.Money{Minor: 999, Currency: "eur"}},
		{name: "large", cost: "92233720368547758.07", currency: "USD", want: money.USD(9223372036854775807)},
		{name: "fractional minor units", cost: "11.175", currency: "USD", fails: true},
		{name: "exponent", cost: "1.1e1", currency: "USD", fails: true},
		{name: "negative", cost: "-11.17", currency: "USD", fails: true},
		{name: "zero", cost: "0.00", currency: "USD", fails: true},
		{name: "overflow", cost: "92233720368547758.08", currency: "USD", fails: true},
		{name: "comma decimal", cost: "11,17", currency: "USD", fails: true},
		{name: "empty", cost: "", currency: "USD", fails: true},
		{name: "unknown currency", cost: "11.17", currency: "XTS", fails: true},
		{name: "spaces", cost: " 11.17", currency: "USD", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := priceServer(t, tt.cost, tt.currency)
			a, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
			if tt.fails {
				if fault.CodeOf(err) != ProviderError {
					t.Fatalf("got %+v, %v; want provider_error", a, err)
				}
				return
			}
			if err != nil || a.Price != tt.want || a.RenewalPrice != tt.want {
				t.Fatalf("got %+v, %v; want %v", a, err, tt.want)
			}
		})
	}
}

func TestAnswerShapes(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   fault.Code
	}{
		{name: "success false on 200", status: 200, body: `{"success":false,"errors":[{"code":1,"message":"nope"}],"messages":[],"result":null}`, code: ProviderRefused},
		{name: "not json", status: 200, body: `<html>`, code: ProviderError},
		{name: "name omitted", status: 200, body: `{"success":true,"errors":[],"messages":[],"result":{"domains":[]}}`, code: ProviderRefused},
		{name: "registrable without price", status: 200, body: `{"success":true,"errors":[],"messages":[],"result":{"domains":[{"name":"shop.com","registrable":true,"tier":"standard"}]}}`, code: ProviderError},
		{name: "redirect is not followed", status: 307, body: ``, code: ProviderError},
		{name: "4xx with a message", status: 400, body: `{"success":false,"errors":[{"code":1001,"message":"bad\u0007 input"}],"messages":[],"result":null}`, code: ProviderRefused},
		{name: "4xx not json", status: 404, body: `not found`, code: ProviderRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.status == 307 {
					http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", tt.status)
					return
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c := asAccount(t, Config{BaseURL: srv.URL, RequestsPerSecond: 1000}, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}))
			_, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
			if fault.CodeOf(err) != tt.code {
				t.Fatalf("code %s (%v), want %s", fault.CodeOf(err), err, tt.code)
			}
			if strings.ContainsRune(fault.PublicOf(err), '\a') {
				t.Fatal("a control character from the provider reached the message")
			}
			if hits.Load() != 1 {
				t.Fatalf("server saw %d requests", hits.Load())
			}
		})
	}
}

// renewable is a credential that can be renewed once Cloudflare refuses it.
type renewable struct {
	invalidated, rejected int
}

func (r *renewable) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: fmt.Sprintf("t%d", r.invalidated)}, nil
}
func (r *renewable) Invalidate() { r.invalidated++ }
func (r *renewable) Reject()     { r.rejected++ }

// A credential Cloudflare refuses is renewed and the request sent once
// more (it was refused before anything was done); refused again, the
// credential is rejected for good, and nothing is sent a third time.
func TestRefusedCredentialIsRenewedOnceThenRejected(t *testing.T) {
	var hits atomic.Int32
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		auths = append(auths, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}`)
	}))
	t.Cleanup(srv.Close)
	cred := &renewable{}
	c := asAccount(t, Config{BaseURL: srv.URL, RequestsPerSecond: 1000}, cred)
	_, err := c.CheckDomain(context.Background(), name(t, "shop.com"))
	if fault.CodeOf(err) != fault.AccountRelinkRequired {
		t.Fatalf("%v", err)
	}
	if hits.Load() != 2 || cred.invalidated != 1 || cred.rejected != 1 || auths[0] == auths[1] {
		t.Fatalf("%d requests (%v), %d renewals, %d rejections", hits.Load(), auths, cred.invalidated, cred.rejected)
	}
}
