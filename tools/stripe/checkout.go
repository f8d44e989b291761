package stripe

import (
	"context"
	"net/url"
	"time"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Checkout is a Checkout Session in setup mode: a Stripe-hosted page where
// the human saves a card. The agent gets the URL, never card data.
type Checkout struct {
	ID        string // cs_…
	URL       string // the hosted page to send the human to
	ExpiresAt time.Time
	RequestID string
}

// CreateSetupCheckout starts a Checkout Session in setup mode for the
// customer, limited to cards. Stripe sends the human's browser to
// successURL (where {CHECKOUT_SESSION_ID} is replaced by the session id) or
// cancelURL. It is a POST with idemKey: a retry with the same key returns
// the same session.
func (c *Client) CreateSetupCheckout(ctx context.Context, customerID, successURL, cancelURL, idemKey string) (Checkout, error) {
	if err := checkID("customerID", customerID, "cus_"); err != nil {
		return Checkout{}, err
	}
	for _, u := range []string{successURL, cancelURL} {
		if !webURL(u) {
			return Checkout{}, fault.New(fault.InvalidArgument, "stripe: successURL and cancelURL must be absolute http or https URLs")
		}
	}
	if err := checkIdemKey(idemKey); err != nil {
		return Checkout{}, err
	}
	p := &stripego.CheckoutSessionParams{
		Mode:               stripego.String(string(stripego.CheckoutSessionModeSetup)),
		Customer:           stripego.String(customerID),
		SuccessURL:         stripego.String(successURL),
		CancelURL:          stripego.String(cancelURL),
		PaymentMethodTypes: stripego.StringSlice([]string{string(stripego.PaymentMethodTypeCard)}),
	}
	p.SetIdempotencyKey(idemKey)
	o := op{name: "checkout_create", what: "creating the Stripe Checkout session", creates: true}
	var sess *stripego.CheckoutSession
	s, err := c.call(ctx, o, func(ctx context.Context) { p.Context = ctx }, func() (err error) {
		sess, err = c.api.CheckoutSessions.New(p)
		return err
	})
	if err != nil {
		return Checkout{}, err
	}
	if sess == nil || checkID("the session id", sess.ID, "cs_") != nil {
		return Checkout{}, unexpected(o, s, "no session id")
	}
	// The URL goes to a human's browser: https, or the loopback sandbox.
	if u, err := url.Parse(sess.URL); err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && loopback(u.Hostname())) {
		return Checkout{}, unexpected(o, s, "the session has no https url")
	}
	out := Checkout{ID: sess.ID, URL: sess.URL, RequestID: s.RequestID}
	if sess.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(sess.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// CheckoutResult reads a session: complete is true, with the saved card's
// payment method id, once the human finished it and its SetupIntent
// succeeded; an open (or still processing) session is ("", false, nil); an
// expired one is a checkout_expired error.
func (c *Client) CheckoutResult(ctx context.Context, sessionID string) (paymentMethodID string, complete bool, err error) {
	if err := checkID("sessionID", sessionID, "cs_"); err != nil {
		return "", false, err
	}
	p := &stripego.CheckoutSessionParams{}
	p.AddExpand("setup_intent")
	o := op{name: "checkout_get", what: "reading the Stripe Checkout session"}
	var sess *stripego.CheckoutSession
	s, err := c.call(ctx, o, func(ctx context.Context) { p.Context = ctx }, func() (err error) {
		sess, err = c.api.CheckoutSessions.Get(sessionID, p)
		return err
	})
	if err != nil {
		return "", false, err
	}
	if sess == nil {
		return "", false, unexpected(o, s, "no session")
	}
	switch sess.Status {
	case stripego.CheckoutSessionStatusOpen:
		return "", false, nil
	case stripego.CheckoutSessionStatusExpired:
		return "", false, fault.New(CheckoutExpired,
			"The Stripe Checkout session expired before a card was saved; nothing was charged. Start billing_setup again.")
	case stripego.CheckoutSessionStatusComplete:
		si := sess.SetupIntent
		if si == nil || si.Status != stripego.SetupIntentStatusSucceeded || si.PaymentMethod == nil {
			return "", false, nil
		}
		if checkID("the payment method id", si.PaymentMethod.ID, "pm_") != nil {
			return "", false, unexpected(o, s, "a payment method id that is not pm_…")
		}
		return si.PaymentMethod.ID, true, nil
	}
	return "", false, unexpected(o, s, "session status "+sanitize(string(sess.Status)))
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && len(s) <= 2048
}
