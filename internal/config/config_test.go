package config

import (
	"errors"
	"testing"
)

// production is a production configuration that passes Validate.
func production() Config {
	c := Default()
	c.Mode = Production
	c.RedisURL = "redis://127.0.0.1:6379"
	c.PolicyFile = "policy.cedar"
	c.IdPIssuer, c.IdPJWKS = "https://idp.example", "idp.json"
	c.AttestIssuer, c.AttestJWKS = "https://attest.example", "attest.json"
	return c
}

func TestFormGatesDefaultByMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func() Config
		set  string
		want string
	}{
		{"sandbox answers form gates by elicitation", Default, "", "elicit"},
		{"production answers them on the approvals page", production, "", "approval"},
		{"production may still choose elicitation", production, "elicit", "elicit"},
		{"the sandbox may choose approval", Default, "approval", "approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			c.FormGates = tc.set
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.FormGates != tc.want {
				t.Fatalf("FormGates %q, want %q", c.FormGates, tc.want)
			}
		})
	}
}

func TestSignInClientFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		flag   string
	}{
		{"client id without an issuer", func(c *Config) { c.IdPClientID = "tollgate" }, "idp-client-id"},
		{"secret without a client id", func(c *Config) {
			c.IdPIssuer, c.IdPJWKS, c.IdPClientSecret = "https://idp.example", "idp.json", "s"
		}, "idp-client-secret"},
		{"form gates neither elicit nor approval", func(c *Config) { c.FormGates = "page" }, "form-gates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			var fe *FieldError
			if err := c.Validate(); !errors.As(err, &fe) || fe.Flag != tc.flag {
				t.Fatalf("Validate: %v, want a refusal naming --%s", err, tc.flag)
			}
		})
	}
	c := production()
	c.IdPClientID, c.IdPClientSecret = "tollgate", "s"
	if err := c.Validate(); err != nil {
		t.Fatalf("production with a sign-in client: %v", err)
	}
}
