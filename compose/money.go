package compose

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// moneyParts is the wiring of the ledger, idempotency, loop guard and providers.
type moneyParts struct {
	ledger *spend.Ledger
	idem   *idempotency.Store
	loop   *loopguard.Guard
	// cloudflare holds no credential: tool calls act through As, in the
	// principal's own account (tenancy.go).
	cloudflare *cloudflare.Client
	cfBase     string // the Cloudflare API root ("" for the default; sandbox: the fake's)
}

func (a *App) buildMoney(ctx context.Context) (*moneyParts, error) {
	cfg, rdb := a.Cfg, a.Redis.Client
	m := &moneyParts{}
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
	secret, err := a.secrets.Get(ctx, sharedsecret.Idempotency)
	if err != nil {
		return nil, err
	}
	if m.idem, err = idempotency.New(rdb, idempotency.Config{Secret: secret, InProgressTTL: cfg.IdempotencyLock}); err != nil {
		return nil, err
	}
	if m.loop, err = loopguard.New(rdb, loopguard.Config{PerSession: cfg.RateSession, PerPrincipal: cfg.RateUser}); err != nil {
		return nil, err
	}

	// No Cloudflare credential of the server's own: every call acts in the
	// principal's linked account (tenancy.go). The server's credentials
	// are its OAuth client's id and secret (flows.go).
	// Every request is bounded by --provider-timeout; production may point
	// at another API root (--cloudflare-api-url: a fake in tests).
	cf := cloudflare.Config{Catalog: a.Catalog, Timeout: cfg.ProviderTimeout, BaseURL: cfg.CloudflareAPIURL}
	m.cfBase = cfg.CloudflareAPIURL
	if a.sandbox != nil {
		m.cfBase = a.sandbox.cloudflareURL()
		cf.BaseURL = m.cfBase
		cf.HTTPClient, cf.RequestsPerSecond = &http.Client{}, 1000
	}
	if m.cloudflare, err = cloudflare.NewClient(cf); err != nil {
		return nil, err
	}
	return m, nil
}

// registerConfig configures domain_register; polling is fast against the
// fixture.
func (a *App) registerConfig() tools.RegisterConfig {
	rc := tools.RegisterConfig{PollEvery: 2 * time.Second, MaxPolls: 60, ConfirmAbove: a.gates.confirm, Ledger: a.money.ledger, Zones: a.tenant}
	if a.Cfg.Mode == config.Sandbox {
		rc.PollEvery, rc.MaxPolls = 20*time.Millisecond, 50
	}
	return rc
}

// workersSubdomain is the workers.dev subdomain of preview URLs: every
// account has its own, so only the sandbox (whose fake has one for all)
// shows one; elsewhere the URL is left out.
func (a *App) workersSubdomain() string {
	if a.Cfg.Mode == config.Sandbox {
		return "tollgate-sandbox"
	}
	return ""
}
