package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/agent"
)

// TestConfigRefusesBeforeSending: a Config that cannot be right is refused
// by New with Misconfigured and a message naming the field.
func TestConfigRefusesBeforeSending(t *testing.T) {
	actor := agent.AttestorFunc(func(context.Context) (string, error) { return "x", nil })
	ok := agent.Config{Issuer: "http://127.0.0.1:7420", Actor: actor}
	rows := []struct {
		name  string
		edit  func(*agent.Config)
		field string
	}{
		{"no issuer", func(c *agent.Config) { c.Issuer = "" }, "Config.Issuer"},
		{"issuer with a query", func(c *agent.Config) { c.Issuer = "http://h/?token=x" }, "Config.Issuer"},
		{"issuer not http", func(c *agent.Config) { c.Issuer = "ftp://h" }, "Config.Issuer"},
		{"no actor", func(c *agent.Config) { c.Actor = nil }, "Config.Actor"},
		{"scope with a space", func(c *agent.Config) { c.Scope = []string{"dns:read dns:write"} }, "Config.Scope"},
		{"empty resources", func(c *agent.Config) { c.Resources = []string{} }, "Resources"},
		{"a resource that is a URL", func(c *agent.Config) { c.Resources = []string{"https://shop.example/"} }, "Resources"},
		{"a float budget", func(c *agent.Config) {
			c.Budgets = []agent.Budget{{Provider: "cloudflare", Amount: "1e3", Currency: "usd"}}
		}, "Budgets"},
		{"a budget in an unknown currency", func(c *agent.Config) {
			c.Budgets = []agent.Budget{{Provider: "cloudflare", Amount: "1", Currency: "xyz"}}
		}, "Budgets"},
		{"two budgets for one provider", func(c *agent.Config) {
			c.Budgets = []agent.Budget{{Provider: "stripe", Amount: "1", Currency: "usd"}, {Provider: "stripe", Amount: "2", Currency: "usd"}}
		}, "Budgets"},
		{"a two-line description", func(c *agent.Config) { c.Description = "a\nb" }, "Config.Description"},
		{"negative RefreshBefore", func(c *agent.Config) { c.RefreshBefore = -1 }, "Config.RefreshBefore"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := agent.New(cfg)
			if !errors.Is(err, agent.Misconfigured) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want misconfigured naming %s", err, tc.field)
			}
		})
	}
	if _, err := agent.New(ok); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}

// TestJWTFile: the file is read on every call (rotation), trimmed, and an
// empty, missing or oversized file is NoAttestation.
func TestJWTFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	a := agent.JWTFile(p)
	ctx := context.Background()
	if _, err := a.Attestation(ctx); !errors.Is(err, agent.NoAttestation) {
		t.Fatalf("missing file: %v", err)
	}
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first.jwt\n")
	if got, err := a.Attestation(ctx); err != nil || got != "first.jwt" {
		t.Fatalf("got %q %v", got, err)
	}
	write("second.jwt")
	if got, err := a.Attestation(ctx); err != nil || got != "second.jwt" {
		t.Fatalf("after rotation got %q %v", got, err)
	}
	write(" \n")
	if _, err := a.Attestation(ctx); !errors.Is(err, agent.NoAttestation) {
		t.Fatalf("empty file: %v", err)
	}
	write(strings.Repeat("a", 16<<10+1))
	if _, err := a.Attestation(ctx); !errors.Is(err, agent.NoAttestation) {
		t.Fatalf("oversized file: %v", err)
	}
}
