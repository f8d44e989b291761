package compose

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/tools/stripe"
)

// sandboxStripeKey is the secret key the sandbox's fake Stripe accepts; it
// is not a credential anywhere else.
const sandboxStripeKey = "sk_test_tollgate_sandbox"

// SandboxStripeKey is the key of the sandbox's fake Stripe (not a credential
// anywhere else), for `tollgate spend reconcile` against a sandbox.
const SandboxStripeKey = sandboxStripeKey

// CredentialKeyEnv holds the 32-byte key sealing provider credentials and
// named secrets at rest (production).
const CredentialKeyEnv = "TOLLGATE_CREDENTIAL_KEY"

// stripeParts is the Stripe adapter.
type stripeParts struct {
	client *stripe.Client
}

func (a *App) buildStripe() (*stripeParts, error) {
	sp := &stripeParts{}
	// Every request is bounded by --provider-timeout; production may point
	// at another API root (--stripe-api-url: stripe-mock in tests).
	cfg := stripe.Config{Timeout: a.Cfg.ProviderTimeout, BaseURL: a.Cfg.StripeAPIURL}
	if a.sandbox != nil {
		cfg.BaseURL, cfg.SecretKey, cfg.HTTPClient = a.sandbox.stripeURL(), sandboxStripeKey, &http.Client{}
		cfg.TestClock = a.sandbox.stripeClock()
	} else {
		// Provider credentials come from the environment only (SPEC §2).
		cfg.SecretKey = os.Getenv(stripe.SecretKeyEnv)
		if cfg.SecretKey == "" {
			return nil, fmt.Errorf("production needs %s in the environment", stripe.SecretKeyEnv)
		}
	}
	var err error
	if sp.client, err = stripe.NewClient(cfg); err != nil {
		return nil, err
	}
	return sp, nil
}

// buildLinks opens the store of provider links and named secrets. The key
// sealing them comes from the environment in production; the sandbox keeps
// one in its Redis.
func (a *App) buildLinks(ctx context.Context) (*links.Store, error) {
	var key []byte
	if raw := os.Getenv(CredentialKeyEnv); raw != "" {
		k, err := links.ParseKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", CredentialKeyEnv, err)
		}
		key = k
	} else if a.Cfg.Mode == config.Sandbox {
		k, err := a.secrets.Get(ctx, sharedsecret.Credentials)
		if err != nil {
			return nil, err
		}
		key = k
	} else {
		return nil, fmt.Errorf("production needs %s (32 bytes, base64) to seal provider credentials at rest", CredentialKeyEnv)
	}
	return links.New(a.Redis.Client, key)
}
