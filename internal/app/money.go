package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	fakecf "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// sandboxCloudflareToken is the API token the sandbox's fake Cloudflare
// accepts; it is not a credential anywhere else.
const sandboxCloudflareToken = "sandbox-cloudflare-token"

// moneyParts is the wiring of the ledger, idempotency, loop guard and providers.
type moneyParts struct {
	ledger    *spend.Ledger
	idem      *idempotency.Store
	loop      *loopguard.Guard
	registrar *cloudflare.Client
	fakeCF    *fakecf.Fake // sandbox only
	cfBase    string       // the Cloudflare API root ("" for the default; sandbox: the fake's)
	stop      func()
}

func (a *App) buildMoney(ctx context.Context) (*moneyParts, error) {
	cfg, rdb := a.Cfg, a.Redis.Client
	m := &moneyParts{stop: func() {}}
	caps := map[string]money.Money{}
	for _, c := range cfg.Caps {
		p, amt, err := spend.ParseCapFlag(c)
		if err != nil {
			return nil, fmt.Errorf("--cap %q: %w", c, err)
		}
		caps[p] = amt
	}
	var err error
	if m.ledger, err = spend.New(rdb, spend.Config{Caps: caps, HoldTTL: cfg.HoldTTL}); err != nil {
		return nil, err
	}
	secret, err := sharedSecret(ctx, rdb, "tg:secret:idempotency")
	if err != nil {
		return nil, err
	}
	if m.idem, err = idempotency.New(rdb, idempotency.Config{Secret: secret}); err != nil {
		return nil, err
	}
	if m.loop, err = loopguard.New(rdb, loopguard.Config{PerSession: cfg.RateSession, PerPrincipal: cfg.RateUser}); err != nil {
		return nil, err
	}

	cf := cloudflare.Config{AccountID: cfg.CloudflareAccountID, Catalog: a.Catalog}
	if cfg.Mode == config.Sandbox {
		m.fakeCF = fakecf.New(fakecf.Config{Token: sandboxCloudflareToken, StatusPolls: 2,
			Accounts: sandboxCloudflareAccounts, OAuthClients: sandboxOAuthClients(cfg.PublicURL)})
		srv := httptest.NewServer(m.fakeCF)
		m.stop = srv.Close
		m.cfBase = srv.URL
		cf.BaseURL, cf.APIToken, cf.AccountID = srv.URL, sandboxCloudflareToken, m.fakeCF.AccountID()
		cf.HTTPClient, cf.RequestsPerSecond = &http.Client{}, 1000
	} else {
		// Provider credentials come from the environment only (SPEC §2).
		cf.APIToken = os.Getenv(cloudflare.APITokenEnv)
		if cf.APIToken == "" {
			return nil, fmt.Errorf("production needs %s in the environment", cloudflare.APITokenEnv)
		}
	}
	if m.registrar, err = cloudflare.NewClient(cf); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// registerConfig configures domain_register; polling is fast against the
// fixture.
func (a *App) registerConfig() tools.RegisterConfig {
	rc := tools.RegisterConfig{PollEvery: 2 * time.Second, MaxPolls: 60, ConfirmAbove: a.gates.confirm, Ledger: a.money.ledger}
	if a.Cfg.Mode == config.Sandbox {
		rc.PollEvery, rc.MaxPolls = 20*time.Millisecond, 50
	}
	return rc
}

// sharedSecret returns a 32-byte secret every replica on this Redis shares:
// the first replica creates it.
func sharedSecret(ctx context.Context, rdb redis.UniversalClient, key string) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := rdb.SetNX(ctx, key, b, 0).Err(); err != nil {
		return nil, fmt.Errorf("app: store %s in Redis: %w", key, err)
	}
	got, err := rdb.Get(ctx, key).Bytes()
	if err != nil || len(got) != 32 {
		return nil, fmt.Errorf("app: read %s from Redis: %v", key, err)
	}
	return got, nil
}

// FakeCloudflare is the sandbox's fake Cloudflare (nil in production), for
// tests that assert what reached the provider.
func (a *App) FakeCloudflare() *fakecf.Fake { return a.money.fakeCF }

// workersSubdomain is the account's workers.dev subdomain for preview URLs.
func (a *App) workersSubdomain() string {
	if a.Cfg.WorkersSubdomain != "" {
		return a.Cfg.WorkersSubdomain
	}
	if a.Cfg.Mode == config.Sandbox {
		return "tollgate-sandbox"
	}
	return ""
}
