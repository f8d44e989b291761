package compose

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/web/edge"
)

// LinkTestAccount gives principal a Cloudflare account of its own in the
// sandbox's fake, linked as account_connect links one after the terms
// gate (the fake's account creation with a grant for tollgate's OAuth
// client), and returns the account id. Linking again returns the same.
func (a *App) LinkTestAccount(t testing.TB, principal string) string {
	t.Helper()
	ctx := context.Background()
	if acct, err := a.links.CloudflareAccount(ctx, principal); err != nil || acct != "" {
		if err != nil {
			t.Fatal(err)
		}
		return acct
	}
	cfg, err := a.accountConfig()
	if err != nil {
		t.Fatal(err)
	}
	email := strings.TrimPrefix(principal, "user:")
	if _, taken := a.sandbox.cf.AccountForEmail(email); taken {
		email = "linked+" + email
	}
	link, err := cfg.Directory.CreateAccount(ctx, email, email, a.sandbox.cf.TermsVersion())
	if err != nil {
		t.Fatalf("create a Cloudflare account for %s: %v", principal, err)
	}
	if err := a.links.LinkCloudflare(ctx, principal, link, nil); err != nil {
		t.Fatal(err)
	}
	return link.AccountID
}

// AddTestZone makes sure principal's linked account (LinkTestAccount) has
// an active zone name, records it as the principal's, and returns its id.
func (a *App) AddTestZone(t testing.TB, principal, name string) string {
	t.Helper()
	acct := a.LinkTestAccount(t, principal)
	z, err := a.sandbox.cf.EnsureZoneIn(acct, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.links.AddZone(context.Background(), principal, links.ZoneRef{Name: domainname.Name(z.Name), ID: z.ID, AccountID: acct}); err != nil {
		t.Fatal(err)
	}
	return z.ID
}

const AnonymousBodyLimit, UnknownTool = anonymousBodyLimit, edge.UnknownTool

// SandboxClock is the sandbox's Stripe test clock.
func (a *App) SandboxClock() string { return a.sandbox.stripeClock() }
