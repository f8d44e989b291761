package stripe

import (
	"context"
	"fmt"
	"math"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Price is the Stripe price behind a catalog plan.
type Price struct {
	ID        string // price_…
	LookupKey string
	Amount    money.Money // per interval
	Interval  catalog.Interval
	RequestID string
}

// PriceForPlan finds the active price whose lookup key is lookupKey (the
// catalog plan name, e.g. "plan.starter"). Only a flat per-unit price
// charged every month or every year, in a currency tollgate supports, is
// accepted: anything else could charge what the catalog and the purchase
// gate did not show.
func (c *Client) PriceForPlan(ctx context.Context, lookupKey string) (Price, error) {
	if err := checkText("lookupKey", lookupKey, 200); err != nil {
		return Price{}, err
	}
	lp := &stripego.PriceListParams{LookupKeys: stripego.StringSlice([]string{lookupKey}), Active: stripego.Bool(true)}
	lp.Limit = stripego.Int64(10)
	var prices []*stripego.Price
	o := op{name: "price_list", what: "looking up the Stripe price for " + lookupKey}
	s, err := c.call(ctx, o, func(ctx context.Context) { lp.Context = ctx }, func() error {
		it := c.api.Prices.List(lp)
		for n := 0; n < 10 && it.Next(); n++ {
			prices = append(prices, it.Price())
		}
		return it.Err()
	})
	if err != nil {
		return Price{}, err
	}
	switch len(prices) {
	case 0:
		return Price{}, fault.Newf(fault.NotFound,
			"Stripe has no active price with lookup key %q; an operator must create one. Nothing was charged.", lookupKey)
	case 1:
	default:
		return Price{}, unexpected(o, s, "more than one active price with this lookup key")
	}
	p := prices[0]
	why := ""
	switch {
	case checkID("the price id", p.ID, "price_") != nil:
		why = "a price id that is not price_…"
	case p.LookupKey != "" && p.LookupKey != lookupKey:
		why = "a price with another lookup key"
	case p.Type != stripego.PriceTypeRecurring || p.Recurring == nil:
		why = "the price is not recurring"
	case p.BillingScheme != "" && p.BillingScheme != stripego.PriceBillingSchemePerUnit:
		why = "the price is tiered"
	case p.Recurring.IntervalCount != 1:
		why = fmt.Sprintf("the price is charged every %d %ss", p.Recurring.IntervalCount, p.Recurring.Interval)
	case p.UnitAmount <= 0:
		why = "the price has no positive unit_amount"
	}
	var interval catalog.Interval
	if p.Recurring != nil {
		interval = catalog.Interval(p.Recurring.Interval)
	}
	if why == "" && interval != catalog.Month && interval != catalog.Year {
		why = "the price is charged per " + sanitize(string(p.Recurring.Interval))
	}
	if _, ok := money.Exponent(string(p.Currency)); why == "" && !ok {
		why = "the price is in an unsupported currency"
	}
	if why != "" {
		return Price{}, unexpected(o, s, why)
	}
	return Price{
		ID: p.ID, LookupKey: lookupKey, Amount: money.Money{Minor: p.UnitAmount, Currency: string(p.Currency)},
		Interval: interval, RequestID: s.RequestID,
	}, nil
}

// Subscription is a started subscription.
type Subscription struct {
	ID        string // sub_…
	Status    string // active or trialing; incomplete comes with a payment_incomplete error
	Amount    money.Money
	RequestID string // Stripe's Request-Id, for the audit trail
	Replayed  bool   // Stripe answered from its idempotency store: no second subscription
	Invoice   string // in_…: the first invoice, for reconcile ("" if Stripe sent none)
}

// StartSubscription subscribes the customer to one unit of the price,
// charging paymentMethodID. It is a POST with idemKey: a retry with the same
// key (after a timeout, say) returns the first answer and never starts a
// second subscription.
//
// payment_behavior is error_if_incomplete: when the first payment fails
// Stripe answers 402 and creates nothing (card_declined), rather than
// leaving an incomplete subscription that the human could later pay
// outside tollgate's hold.
//
// metadata (at most 10 keys) is stored on the subscription; tollgate puts
// the principal and the hold there, so that a signed webhook about the
// subscription names whose ledger it belongs to.
func (c *Client) StartSubscription(ctx context.Context, customerID, priceID, paymentMethodID, idemKey string, metadata map[string]string) (Subscription, error) {
	if err := checkID("customerID", customerID, "cus_"); err != nil {
		return Subscription{}, err
	}
	if err := checkID("priceID", priceID, "price_"); err != nil {
		return Subscription{}, err
	}
	if err := checkID("paymentMethodID", paymentMethodID, "pm_"); err != nil {
		return Subscription{}, err
	}
	if err := checkIdemKey(idemKey); err != nil {
		return Subscription{}, err
	}
	p := &stripego.SubscriptionParams{
		Customer:             stripego.String(customerID),
		Items:                []*stripego.SubscriptionItemsParams{{Price: stripego.String(priceID)}},
		DefaultPaymentMethod: stripego.String(paymentMethodID),
		PaymentBehavior:      stripego.String("error_if_incomplete"),
	}
	if len(metadata) > 10 {
		return Subscription{}, fault.New(fault.InvalidArgument, "at most 10 metadata keys; nothing was sent to Stripe")
	}
	for k, v := range metadata {
		p.AddMetadata(k, v)
	}
	p.SetIdempotencyKey(idemKey)
	o := op{name: "subscription_create", what: "starting the subscription to " + priceID, charges: true}
	var sub *stripego.Subscription
	s, err := c.call(ctx, o, func(ctx context.Context) { p.Context = ctx }, func() (err error) {
		sub, err = c.api.Subscriptions.New(p)
		return err
	})
	if err != nil {
		return Subscription{}, err
	}
	if sub == nil || checkID("the subscription id", sub.ID, "sub_") != nil {
		return Subscription{}, unexpected(o, s, "no subscription id")
	}
	if sub.Customer != nil && sub.Customer.ID != customerID {
		return Subscription{}, unexpected(o, s, "a subscription for another customer")
	}
	amount, why := subscriptionAmount(sub)
	if why != "" {
		return Subscription{}, unexpected(o, s, why)
	}
	out := Subscription{ID: sub.ID, Status: string(sub.Status), Amount: amount, RequestID: s.RequestID,
		Replayed: s.Header.Get("Idempotent-Replayed") == "true"}
	if sub.LatestInvoice != nil && checkID("the invoice id", sub.LatestInvoice.ID, "in_") == nil {
		out.Invoice = sub.LatestInvoice.ID
	}
	switch sub.Status {
	case stripego.SubscriptionStatusActive, stripego.SubscriptionStatusTrialing:
		return out, nil
	case stripego.SubscriptionStatusIncomplete:
		ce := newCallError(o, s, fmt.Errorf("subscription %s is incomplete", sub.ID))
		return out, fault.Wrap(ce, PaymentIncomplete, fmt.Sprintf(
			"Stripe created subscription %s but its first payment did not go through; nothing was charged. "+
				"Stripe cancels it after 23 hours unless its first invoice is paid.", sub.ID))
	}
	return out, unexpected(o, s, "subscription status "+sanitize(string(sub.Status)))
}

// subscriptionAmount is what one period costs: the sum of the items.
func subscriptionAmount(sub *stripego.Subscription) (money.Money, string) {
	if sub.Items == nil || len(sub.Items.Data) == 0 {
		return money.Money{}, "a subscription without items"
	}
	var m money.Money
	for _, it := range sub.Items.Data {
		if it == nil || it.Price == nil || it.Price.UnitAmount <= 0 {
			return money.Money{}, "an item without a price"
		}
		cur := string(it.Price.Currency)
		if _, ok := money.Exponent(cur); !ok || (m.Currency != "" && cur != m.Currency) {
			return money.Money{}, "items in an unsupported or mixed currency"
		}
		q := it.Quantity
		if q <= 0 {
			return money.Money{}, "an item without a quantity"
		}
		if it.Price.UnitAmount > (math.MaxInt64-m.Minor)/q {
			return money.Money{}, "an amount that overflows"
		}
		m.Currency = cur
		m.Minor += it.Price.UnitAmount * q
	}
	return m, ""
}
