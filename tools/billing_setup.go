package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// BillingConsent is the remembered billing setup at Stripe (SPEC §8: asked
// once per principal and provider).
var BillingConsent = Consent{Provider: "stripe", Version: "setup"}

// BillingSetupMessage is what the billing gate shows the human.
const BillingSetupMessage = "Add a payment method on Stripe's page; the agent never sees card data. Open the link, sign in as yourself, and choose Continue to Stripe."

// BillingPending: the billing gate was passed, but no payment method came
// back from Stripe (e.g. approved with the CLI instead of on Stripe's page).
const BillingPending fault.Code = "billing_pending"

type billingArgs struct {
	gated
}

type billingResult struct {
	Status   string `json:"status" jsonschema:"on_file: a payment method is on file for this principal at Stripe"`
	Provider string `json:"provider"`
}

// BillingSetup sends the human to a Stripe-hosted Checkout page (setup
// mode) through a billing URL gate. The page and its callback live in
// web/flows; this tool only asks, and reports whether a payment method is
// on file. The payment method id never appears in its result.
func BillingSetup(l Links) Tool {
	onFile := func(ctx context.Context, principal string) (bool, error) {
		pm, err := l.Get(ctx, principal, LinkStripePaymentMethod)
		return pm != "", err
	}
	return Tool{
		def: mcp.NewTool("billing_setup",
			mcp.WithDescription("Make sure a payment method is on file at Stripe for the human. If none is, the human is sent (billing gate, URL mode) to a Stripe-hosted page to add one; the agent never sees card data, and no payment method id is ever returned. Returns status on_file once one is saved. Needed before subscription_start."),
			mcp.WithInputSchema[billingArgs](),
			mcp.WithOutputSchema[billingResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"billing:setup"},
		Gates:    []string{string(human.Billing)},
		Provider: "stripe",
		// Metered: it creates approvals and reaches Stripe through its flow.
		Metered: true,
		run: handler[billingArgs, billingResult]{ask_: func(ctx context.Context, c Call[billingArgs], _ *Quote) ([]Ask, error) {
			ok, err := onFile(ctx, c.Principal())
			if err != nil || ok {
				return nil, err
			}
			consent := BillingConsent
			return []Ask{{Kind: human.Billing, Message: BillingSetupMessage,
				Fields:   map[string]string{"provider": "stripe", "what": "save a payment method (Stripe Checkout, setup mode); nothing is charged now"},
				Remember: &consent}}, nil
		}, do: func(ctx context.Context, c Call[billingArgs]) (billingResult, error) {
			ok, err := onFile(ctx, c.Principal())
			if err != nil {
				return billingResult{}, err
			}
			if !ok {
				return billingResult{}, fault.New(BillingPending, "no payment method came back from Stripe yet: the human has to finish on Stripe's page (Continue to Stripe on the approval page). Call billing_setup again to ask again. Nothing was charged.")
			}
			return billingResult{Status: "on_file", Provider: "stripe"}, nil
		}},
	}
}
