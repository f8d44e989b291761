package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/stripe"
)

// Billing is Stripe as subscription_start uses it.
type Billing interface {
	PriceForPlan(ctx context.Context, lookupKey string) (stripe.Price, error)
	StartSubscription(ctx context.Context, customerID, priceID, paymentMethodID, idemKey string, metadata map[string]string) (stripe.Subscription, error)
}

// Links reads what connects a principal to a provider.
type Links interface {
	Get(ctx context.Context, principal, field string) (string, error)
}

// Link field names (internal/links).
const (
	LinkStripeCustomer      = "stripe_customer"
	LinkStripePaymentMethod = "stripe_payment_method"
)

// The metadata keys subscription_start puts on a Stripe subscription: the
// webhook reads whose ledger a renewal belongs to from them (the event is
// signed, and only tollgate sets them).
const (
	MetaPrincipal = "tollgate_principal"
	MetaHold      = "tollgate_hold"
)

// BillingRequired: no payment method is on file yet.
const BillingRequired fault.Code = "billing_required"

// SubscriptionConfig configures subscription_start.
type SubscriptionConfig struct {
	Catalog *catalog.Catalog
	Stripe  Billing
	Links   Links
	Ledger  SpendReader
}

type subscriptionArgs struct {
	gated
	Plan           string `json:"plan" jsonschema:"a catalog plan: stripe/subscription:plan.starter, plan.starter or starter"`
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"optional; a retry with the same key never starts a second subscription"`
}

type subscriptionResult struct {
	SubscriptionID string       `json:"subscription_id"`
	Plan           string       `json:"plan"`
	Status         string       `json:"status"`
	Amount         money.Amount `json:"amount" jsonschema:"charged per interval"`
	Interval       string       `json:"interval"`
}

type subQuote struct {
	svc   catalog.Service
	price stripe.Price
}

// SubscriptionStart starts a Stripe subscription to a catalog plan, after
// the purchase gate and a hold of the first period's price.
func SubscriptionStart(cfg SubscriptionConfig) Tool {
	return Tool{
		def: mcp.NewTool("subscription_start",
			mcp.WithDescription("Start a Stripe subscription to a catalog plan (see catalog_search provider=stripe). A human approves the purchase first (item, exact price, month-to-date spend); the first period's price is held against the monthly cap before Stripe is called. Needs a payment method on file: run billing_setup first. Retries never start a second subscription."),
			mcp.WithInputSchema[subscriptionArgs](),
			mcp.WithOutputSchema[subscriptionResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"subscription:create"},
		args:     map[string]ArgRule{"idempotency_key": idempotencyKeyRule},
		Gates:    []string{"purchase"},
		Provider: "stripe",
		Metered:  true,
		Creating: true,
		Paid:     true,
		run: handler[subscriptionArgs, subscriptionResult]{quote_: func(ctx context.Context, c Call[subscriptionArgs]) (Quote, error) {
			svc, err := cfg.Catalog.Plan(c.Args.Plan)
			if err != nil {
				return Quote{}, err
			}
			pm, err := cfg.Links.Get(ctx, c.Principal(), LinkStripePaymentMethod)
			if err != nil {
				return Quote{}, err
			}
			if pm == "" {
				return Quote{}, fault.New(BillingRequired, "no payment method is on file for this principal: run billing_setup (the human adds one on Stripe's page), then retry. Nothing was charged.")
			}
			_, key, _ := strings.Cut(svc.ID, ":")
			price, err := cfg.Stripe.PriceForPlan(ctx, key)
			if err != nil {
				return Quote{}, err
			}
			return Quote{Amount: price.Amount, Item: fmt.Sprintf("%s subscription (%s per %s)", svc.Name, price.Amount, price.Interval),
				Detail: subQuote{svc: svc, price: price}, Recurring: price.Amount}, nil
		}, ask_: func(ctx context.Context, c Call[subscriptionArgs], q *Quote) ([]Ask, error) {
			// Subscriptions always ask, whatever the threshold.
			return purchaseAsk(ctx, cfg.Ledger, c.Caller, money.Money{}, "stripe", q)
		}, pay: func(ctx context.Context, c Call[subscriptionArgs]) (subscriptionResult, *Charge, error) {
			sq, _ := c.Hold.Quote.Detail.(subQuote)
			cust, err := cfg.Links.Get(ctx, c.Principal(), LinkStripeCustomer)
			if err != nil {
				return subscriptionResult{}, nil, err
			}
			pm, err := cfg.Links.Get(ctx, c.Principal(), LinkStripePaymentMethod)
			if err != nil {
				return subscriptionResult{}, nil, err
			}
			if cust == "" || pm == "" {
				return subscriptionResult{}, nil, fault.New(BillingRequired, "no Stripe customer or payment method on file: run billing_setup, then retry. Nothing was charged.")
			}
			sub, err := cfg.Stripe.StartSubscription(ctx, cust, sq.price.ID, pm, c.Hold.UpstreamKey,
				map[string]string{MetaPrincipal: c.Principal(), MetaHold: c.Hold.ID})
			if err != nil {
				return subscriptionResult{}, nil, err
			}
			charged := sub.Amount
			if charged.Currency != c.Hold.Held.Currency || charged.Minor > c.Hold.Held.Minor || charged.Minor <= 0 {
				charged = c.Hold.Held
			}
			return subscriptionResult{SubscriptionID: sub.ID, Plan: sq.svc.ID, Status: sub.Status,
					Amount: charged.Amount(), Interval: string(sq.price.Interval)}, &Charge{Amount: charged, RequestID: sub.RequestID,
					Bind: &phase.Bind{Invoice: sub.Invoice, Subscription: spend.Subscription{ID: sub.ID, Provider: "stripe", Customer: cust}}}, nil
		}},
	}
}
