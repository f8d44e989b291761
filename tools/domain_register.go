package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// RegisterConfig configures domain_register.
type RegisterConfig struct {
	PollEvery time.Duration // registration status polling; default 2s
	MaxPolls  int           // default 60
	// ConfirmAbove: purchases at or above it ask the human first (the
	// purchase gate); zero asks for every purchase.
	ConfirmAbove money.Money
	Ledger       SpendReader // month-to-date spend, shown in the purchase gate
	// Zones records a registered domain's zone as the principal's.
	Zones ZoneRecorder
}

// ZoneRecorder records that a principal's linked account holds a zone: a
// step that runs in the commit's script, so recording it costs no round
// trip of its own.
type ZoneRecorder interface {
	RecordZoneStep(principal string, t Tenant, z cloudflare.Zone) fuse.Step
}

type domainRegisterArgs struct {
	gated
	Domain         string      `json:"domain" jsonschema:"the domain to register; it must be named in this task's tollgate:resources"`
	Years          json.Number `json:"years,omitempty" jsonschema:"registration term in whole years (default the TLD's minimum)"`
	IdempotencyKey string      `json:"idempotency_key,omitempty" jsonschema:"optional; a retry with the same key returns the first result and never charges twice"`
}

type domainRegisterResult struct {
	Domain         string       `json:"domain"`
	Status         string       `json:"status" jsonschema:"registered, or pending when Cloudflare has not finished yet"`
	Years          int          `json:"years"`
	Charged        money.Amount `json:"charged"`
	RegistrationID string       `json:"registration_id,omitempty"`
	Account        string       `json:"account_id" jsonschema:"the human's Cloudflare account the domain was registered in"`
	ZoneRecorded   bool         `json:"zone_recorded" jsonschema:"true when the domain's zone is recorded as the human's, so the zone tools may act on it; false: run account_connect again once the registration completes"`
}

// DomainRegister registers one domain the task's token names, after
// holding its exact price against the monthly cap.
func DomainRegister(cfg RegisterConfig) Tool {
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	if cfg.MaxPolls <= 0 {
		cfg.MaxPolls = 60
	}
	years := func(a domainRegisterArgs, av cloudflare.Availability) (int, error) {
		if a.Years == "" {
			return max(av.MinYears, 1), nil
		}
		n, err := a.Years.Int64()
		if err != nil || n < 1 || n > 10 {
			return 0, fault.Newf(fault.InvalidArgument, "years must be a whole number from 1 to 10, got %s; nothing was charged", a.Years)
		}
		return int(n), nil
	}
	return Tool{
		def: mcp.NewTool("domain_register",
			mcp.WithDescription("Register a domain at Cloudflare Registrar at its at-cost price, in the human's linked Cloudflare account (it becomes a zone there, which the zone tools may then use). The domain must be named in this task's tollgate:resources; the price is held against the monthly cap before Cloudflare is called and committed when the registration completes. Sends progress notifications while Cloudflare works. Retries with the same arguments or idempotency_key never charge twice."),
			mcp.WithInputSchema[domainRegisterArgs](),
			mcp.WithOutputSchema[domainRegisterResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"domain:register"},
		args:     map[string]ArgRule{"years": intRule(1, 10), "idempotency_key": idempotencyKeyRule},
		Gates:    []string{"purchase"},
		Provider: "cloudflare",
		Metered:  true,
		Creating: true,
		Paid:     true,
		Target:   "domain",
		Account:  true,
		run: handler[domainRegisterArgs, domainRegisterResult]{ask_: func(ctx context.Context, c Call[domainRegisterArgs], q *Quote) ([]Ask, error) {
			return purchaseAsk(ctx, cfg.Ledger, c.Caller, cfg.ConfirmAbove, "cloudflare", q)
		}, quote_: func(ctx context.Context, c Call[domainRegisterArgs]) (Quote, error) {
			if c.Tenant.Cloudflare == nil {
				return Quote{}, fault.New(fault.Internal, "no resolved Cloudflare account for this call; nothing was sent")
			}
			av, err := c.Tenant.Cloudflare.CheckDomain(ctx, c.Target)
			if err != nil {
				return Quote{}, err
			}
			y, err := years(c.Args, av)
			if err != nil {
				return Quote{}, err
			}
			cost, err := av.Cost(y)
			if err != nil {
				return Quote{}, err
			}
			return Quote{Amount: cost, Item: fmt.Sprintf("%s for %d year(s)", c.Target, y), Detail: y}, nil
		}, pay: func(ctx context.Context, c Call[domainRegisterArgs]) (domainRegisterResult, *Charge, error) {
			return registerDomain(ctx, cfg, c)
		}},
	}
}

// registerDomain is domain_register's handler: the order at Cloudflare, then
// polling until the registration settles or the polls run out. Once
// Cloudflare may have the order, the held price is reported as charged,
// also with a refusal.
func registerDomain(ctx context.Context, cfg RegisterConfig, c Call[domainRegisterArgs]) (domainRegisterResult, *Charge, error) {
	var none domainRegisterResult
	name, t, h := c.Target, c.Tenant, c.Hold
	if t.Cloudflare == nil {
		return none, nil, fault.New(fault.Internal, "no resolved Cloudflare account for this call; nothing was sent")
	}
	reg := t.Cloudflare
	y, _ := h.Quote.Detail.(int)
	c.Progress(ctx, 0, 3, "registering "+string(name)+" at Cloudflare")
	// Listed for reconcile under Cloudflare's own key for a registration:
	// the account and the domain as registered.
	note := t.AccountID + "/" + string(name)
	// unknown is a refusal after which Cloudflare may have the order: the
	// guard decides from the refusal whether the held price counts, and
	// lists it under note if it does.
	unknown := func(err error) (domainRegisterResult, *Charge, error) {
		if !provider.Reached(err) {
			return none, nil, err
		}
		return none, &Charge{Unknown: true, Note: note, NoteRef: string(name)}, err
	}
	r, err := reg.Register(ctx, name, y)
	if err != nil {
		// Whether Cloudflare may have the order comes from the error: one
		// never sent releases the hold, one that may have arrived keeps the
		// price counted.
		return unknown(err)
	}
	charged := h.Held
	if r.PriceReported && r.Price.Currency == h.Held.Currency && r.Price.Minor <= h.Held.Minor {
		charged = r.Price
	}
	ref := r.RayID
	if ref == "" {
		ref = string(name)
	}
	charge := &Charge{Amount: charged, RequestID: r.RayID, Note: note, NoteRef: ref}
	status := r.Status
	for i := 0; !terminal(status) && i < cfg.MaxPolls; i++ {
		c.Progress(ctx, 1, 3, fmt.Sprintf("waiting for Cloudflare (%s)", status))
		select {
		case <-ctx.Done():
			// The registration may still complete: count the held amount as
			// spent rather than lose track of it.
			return none, charge, provider.AfterCall(fault.New(fault.Unavailable, "the call was cancelled while Cloudflare was registering "+string(name)+"; the held price was counted as spent. Check spend_status and domain_check before retrying."))
		case <-time.After(cfg.PollEvery):
		}
		st, err := reg.RegistrationStatus(ctx, name)
		if err != nil {
			continue
		}
		if st.State == cloudflare.StateActionRequired {
			return unknown(provider.AfterCall(fault.Newf(cloudflare.ActionRequired, "Cloudflare needs the account owner to act before %s can be registered: %s. The held price stays counted until that is resolved (tollgate spend holds).", name, st.Action)))
		}
		status = st.State
	}
	switch status {
	case cloudflare.StateSucceeded:
		c.Progress(ctx, 3, 3, string(name)+" registered")
		out := domainRegisterResult{Domain: string(name), Status: "registered", Years: y, Charged: charged.Amount(), RegistrationID: r.ID, Account: t.AccountID}
		if step, ok := recordZone(ctx, cfg.Zones, c.Principal(), t, name); ok {
			charge.With, out.ZoneRecorded = append(charge.With, step), true
		}
		return out, charge, nil
	case cloudflare.StateFailed, cloudflare.StateBlocked, cloudflare.StateActionRequired:
		return none, nil, provider.AfterCall(fault.Newf(cloudflare.ProviderRefused, "Cloudflare did not register %s (%s); nothing was charged.", name, status))
	}
	// Still working: Cloudflare has the order, so the price counts.
	return domainRegisterResult{Domain: string(name), Status: "pending", Years: y, Charged: charged.Amount(), RegistrationID: r.ID, Account: t.AccountID}, charge, nil
}

// recordZone finds the new domain's zone at Cloudflare and returns the step
// that records it as the principal's, so the zone tools may act on it; the
// guard runs it with the commit. Not found leaves the registration as it
// is; account_connect records the account's zones again. The step writes
// nothing when the human linked another account while the call ran; the
// result, kept in the same script, then still says zone_recorded, and the
// guard logs the step's 0.
func recordZone(ctx context.Context, zones ZoneRecorder, principal string, t Tenant, name domainname.Name) (fuse.Step, bool) {
	if zones == nil {
		return fuse.Step{}, false
	}
	z, err := t.Cloudflare.ZoneForDomain(ctx, name)
	if err != nil {
		return fuse.Step{}, false
	}
	return zones.RecordZoneStep(principal, t, z), true
}

func terminal(s cloudflare.State) bool {
	switch s {
	case cloudflare.StateSucceeded, cloudflare.StateFailed, cloudflare.StateBlocked, cloudflare.StateActionRequired:
		return true
	}
	return false
}
