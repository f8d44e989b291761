//go:build !nosandbox

package compose_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate-dev/tollgate/compose"
	gates "github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/oidctest"
)

// productionApp is a production-mode App whose approvals page signs in at
// an independent OpenID provider (zitadel/oidc's pkg/op) started by the
// test. Its users' subjects are not their e-mail addresses.
func productionApp(t *testing.T, signIn bool) (*compose.App, string, *oidctest.Provider) {
	t.Helper()
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_never_called")
	t.Setenv(compose.CredentialKeyEnv, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	jwks := writeJWKS(t)
	var op *oidctest.Provider
	a, ts := newAppWith(t, func(c *config.Config) {
		c.Mode = config.Production
		c.PolicyFile = filepath.Join("..", "auth", "policy", "sandbox.cedar")
		c.AttestIssuer, c.AttestJWKS = "https://attest.example", jwks
		op = oidctest.Start(t, oidctest.Config{ClientID: "tollgate", ClientSecret: "s3cret",
			RedirectURIs: []string{"http://" + c.Addr + "/approvals/callback"},
			Users:        map[string]string{"alice@example.com": "u-alice", "bob@example.com": "u-bob"}})
		c.IdPIssuer, c.IdPJWKS = op.Issuer, jwks
		if signIn {
			c.IdPClientID, c.IdPClientSecret = "tollgate", "s3cret"
		}
	})
	return a, ts.URL, op
}

// writeJWKS writes a trust bundle of one throwaway key (for the flags
// production requires; no token in these tests is signed with it).
func writeJWKS(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: string(jose.EdDSA), Use: "sig"}}})
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApprovalsSignInProduction: in production the approvals page signs
// humans in at --idp-issuer, here an OpenID provider nobody on this project
// wrote. The principal is user:<sub>; bob, signed in, cannot see or decide
// alice's approval; an ID token with the wrong nonce or for another
// audience is refused; a callback is refused as in the sandbox.
func TestApprovalsSignInProduction(t *testing.T) {
	a, base, op := productionApp(t, true)
	if a.Cfg.FormGates != "approval" {
		t.Fatalf("--form-gates in production defaults to %q, want approval", a.Cfg.FormGates)
	}
	checkAuthorizeRedirect(t, newBrowser(t, base), op.Issuer, "tollgate", base+"/approvals/callback")

	ap, err := a.Approvals().Create(context.Background(), gates.Approval{
		Binding: gates.Binding{Principal: "user:u-alice", Session: "s1", Tool: "deploy_promote", ArgsDigest: "sha256:00"},
		Kind:    gates.Production, Summary: "Promote alice-shop to production",
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bob cannot see or decide alice's approval", func(t *testing.T) {
		bob := newBrowser(t, base)
		bob.signIn("bob@example.com")
		resp, body := bob.get("/approvals/" + ap.ID)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "alice-shop") {
			t.Fatalf("bob opens alice's approval: %d\n%s", resp.StatusCode, body)
		}
		_, list := bob.get("/approvals")
		if strings.Contains(list, ap.ID) || !strings.Contains(list, "user:u-bob") {
			t.Fatalf("bob's list:\n%s", list)
		}
		resp, _ = bob.post("/approvals/"+ap.ID, url.Values{"csrf": {csrfOf(t, list)}, "decision": {"approve"}})
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("bob decides alice's approval: %d", resp.StatusCode)
		}
		if s := statusOf(t, a, ap.ID); s != gates.StatusPending {
			t.Fatalf("alice's approval is %s after bob's attempt", s)
		}
	})

	for _, tc := range []struct {
		name   string
		tamper func()
	}{
		{"ID token with another nonce", func() { op.SetNonce("not-this-sign-ins-nonce") }},
		{"ID token for another audience", func() { op.SetAudience([]string{"another-client"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.tamper()
			defer func() { op.SetNonce(""); op.SetAudience(nil) }()
			b := newBrowser(t, base)
			resp, body := b.login("alice@example.com", "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401\n%s", resp.StatusCode, body)
			}
			if resp, _ := b.get("/approvals"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("after a refused sign-in the list answers %d", resp.StatusCode)
			}
		})
	}
	checkCallbackRefusals(t, base, "alice@example.com")

	t.Run("alice decides her approval", func(t *testing.T) {
		alice := newBrowser(t, base)
		alice.signIn("alice@example.com")
		resp, body := alice.decide(ap.ID, "approve")
		if resp.StatusCode != http.StatusOK || statusOf(t, a, ap.ID) != gates.StatusApproved {
			t.Fatalf("alice approves: %d\n%s", resp.StatusCode, body)
		}
	})
}

// TestApprovalsSignInNotConfigured: production without --idp-client-id
// has no sign-in, and says who decides instead.
func TestApprovalsSignInNotConfigured(t *testing.T) {
	_, base, _ := productionApp(t, false)
	resp, body := newBrowser(t, base).get("/approvals/login")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "--idp-client-id") || !strings.Contains(body, "tollgate approvals approve") {
		t.Fatalf("sign-in without a client: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = newBrowser(t, base).get("/approvals/callback?state=AAAAAAAAAAAAAAAAAAAAAA&code=x")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a callback without sign-in configured: %d", resp.StatusCode)
	}
}

// TestApprovalsSignInSandboxAtAnIndependentProvider: a sandbox given
// --idp-issuer and --idp-client-id signs humans in at that provider (here
// zitadel/oidc's pkg/op), through the same code path as production: the
// authorize redirect carries PKCE and a nonce, a tampered ID token is
// refused, another human cannot open the approval, and its own human
// decides it.
func TestApprovalsSignInSandboxAtAnIndependentProvider(t *testing.T) {
	jwks := writeJWKS(t)
	var op *oidctest.Provider
	a, ts := newAppWith(t, func(c *config.Config) {
		op = oidctest.Start(t, oidctest.Config{ClientID: "tollgate-sbx", ClientSecret: "sbx-s3cret",
			RedirectURIs: []string{"http://" + c.Addr + "/approvals/callback"},
			Users:        map[string]string{"alice@example.com": "u-alice", "bob@example.com": "u-bob"}})
		c.IdPIssuer, c.IdPJWKS = op.Issuer, jwks
		c.IdPClientID, c.IdPClientSecret = "tollgate-sbx", "sbx-s3cret"
	})
	if a.Cfg.Mode == config.Production {
		t.Fatal("want a sandbox App")
	}
	base := ts.URL
	checkAuthorizeRedirect(t, newBrowser(t, base), op.Issuer, "tollgate-sbx", base+"/approvals/callback")

	ap, err := a.Approvals().Create(context.Background(), gates.Approval{
		Binding: gates.Binding{Principal: "user:u-alice", Session: "s1", Tool: "deploy_promote", ArgsDigest: "sha256:00"},
		Kind:    gates.Production, Summary: "Promote alice-shop to production",
	})
	if err != nil {
		t.Fatal(err)
	}
	op.SetNonce("not-this-sign-ins-nonce")
	if resp, body := newBrowser(t, base).login("alice@example.com", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an ID token with another nonce: status %d, want 401\n%s", resp.StatusCode, body)
	}
	op.SetNonce("")

	bob := newBrowser(t, base)
	bob.signIn("bob@example.com")
	if resp, body := bob.get("/approvals/" + ap.ID); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "alice-shop") {
		t.Fatalf("bob opens alice's approval: %d\n%s", resp.StatusCode, body)
	}
	alice := newBrowser(t, base)
	alice.signIn("alice@example.com")
	if resp, body := alice.decide(ap.ID, "approve"); resp.StatusCode != http.StatusOK || statusOf(t, a, ap.ID) != gates.StatusApproved {
		t.Fatalf("alice approves: %d\n%s", resp.StatusCode, body)
	}
}
