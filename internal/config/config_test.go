package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestProviderSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    func() Config
		change func(*Config)
		flag   string // "" when valid
		msg    string
	}{
		{"default timeout is 30s and valid", production, func(c *Config) {}, "", ""},
		{"timeout equal to the handler deadline", production, func(c *Config) { c.ProviderTimeout = c.HandlerDeadline }, "provider-timeout", "--handler-deadline (5m0s)"},
		{"timeout past the handler deadline", production, func(c *Config) {
			c.HandlerDeadline, c.HoldTTL = 2*time.Minute, 3*time.Minute
			c.ProviderTimeout = 150 * time.Second
		}, "provider-timeout", "--handler-deadline (2m0s)"},
		{"a low timeout for tests", Default, func(c *Config) { c.ProviderTimeout = 200 * time.Millisecond }, "", ""},
		{"zero timeout", Default, func(c *Config) { c.ProviderTimeout = 0 }, "provider-timeout", "out of range"},
		{"stripe-mock over loopback http in production", production, func(c *Config) { c.StripeAPIURL = "http://127.0.0.1:12111" }, "", ""},
		{"a fake cloudflare over https in production", production, func(c *Config) { c.CloudflareAPIURL = "https://cf.fake.test/client/v4" }, "", ""},
		{"plain http to another host", production, func(c *Config) { c.CloudflareAPIURL = "http://cf.example.com/client/v4" }, "cloudflare-api-url", "https"},
		{"credentials in the API root", production, func(c *Config) { c.StripeAPIURL = "https://u:p@api.example.test" }, "stripe-api-url", "without query or credentials"},
		{"an API root in the sandbox", Default, func(c *Config) { c.StripeAPIURL = "http://127.0.0.1:12111" }, "stripe-api-url", "sandbox uses its own fakes"},
		{"a CA with a plain Redis URL", production, func(c *Config) { c.RedisCA = notPEM }, "redis-ca", "rediss://"},
		{"a CA file that is not PEM", production, func(c *Config) { c.RedisURL, c.RedisCA = "rediss://127.0.0.1:6380", notPEM }, "redis-ca", "no PEM certificate"},
		{"a CA file that does not exist", production, func(c *Config) { c.RedisURL, c.RedisCA = "rediss://127.0.0.1:6380", filepath.Join(dir, "none.pem") }, "redis-ca", "cannot read"},
		{"TLS cluster and sentinel URLs", production, func(c *Config) { c.RedisURL = "rediss+cluster://a:6380,b:6380" }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			tc.change(&c)
			err := c.Validate()
			if tc.flag == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want none", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Flag != tc.flag || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Validate: %v, want a refusal naming --%s saying %q", err, tc.flag, tc.msg)
			}
		})
	}
	if d := Default(); d.ProviderTimeout != 30*time.Second {
		t.Fatalf("default provider timeout %s, want 30s", d.ProviderTimeout)
	}
}

// --redis-wait-replicas and --redis-wait-timeout: the defaults (off,
// 500ms) and the ends of their ranges pass; beyond them Validate names the
// flag and the range.
func TestRedisWaitFlags(t *testing.T) {
	if c := Default(); c.RedisWaitReplicas != 0 || c.RedisWaitTimeout != 500*time.Millisecond {
		t.Fatalf("defaults %d, %s; want 0 (off) and 500ms", c.RedisWaitReplicas, c.RedisWaitTimeout)
	}
	for _, tc := range []struct {
		replicas int
		timeout  time.Duration
		flag     string
		rng      string
	}{
		{0, 500 * time.Millisecond, "", ""},
		{1, 10 * time.Millisecond, "", ""},
		{16, time.Second, "", ""},
		{-1, 500 * time.Millisecond, "redis-wait-replicas", "0..16"},
		{17, 500 * time.Millisecond, "redis-wait-replicas", "0..16"},
		{1, 9 * time.Millisecond, "redis-wait-timeout", "10ms..1s"},
		{1, 1001 * time.Millisecond, "redis-wait-timeout", "10ms..1s"},
		{0, 0, "redis-wait-timeout", "10ms..1s"},
	} {
		c := production()
		c.RedisWaitReplicas, c.RedisWaitTimeout = tc.replicas, tc.timeout
		err := c.Validate()
		if tc.flag == "" {
			if err != nil {
				t.Errorf("%d, %s: %v", tc.replicas, tc.timeout, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Flag != tc.flag || !strings.Contains(fe.Msg, tc.rng) {
			t.Errorf("%d, %s: got %v, want --%s naming %s", tc.replicas, tc.timeout, err, tc.flag, tc.rng)
		}
	}
}
