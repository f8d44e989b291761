package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// Codes this package decides.
const (
	// ProviderError: 5xx, timeout, no answer or an unreadable one.
	ProviderError fault.Code = "provider_error"
	// ProviderRefused: Stripe answered 4xx (other than a card decline).
	ProviderRefused fault.Code = "provider_refused"
	// CardDeclined: Stripe declined the payment method (402 card_error).
	CardDeclined fault.Code = "card_declined"
	// PaymentIncomplete: Stripe created the subscription but its first
	// payment did not go through.
	PaymentIncomplete fault.Code = "payment_incomplete"
	// CheckoutExpired: the Checkout Session expired before the human
	// finished it.
	CheckoutExpired fault.Code = "checkout_expired"
)

// CallError is the internal cause of every provider failure: what the
// transport and Stripe said. Details exposes the parts safe to show a
// caller (tools put them in the tool error's details).
type CallError struct {
	Op             string // customer_search, customer_create, checkout_create, …
	HTTPStatus     int    // 0 when no answer arrived
	RequestID      string // Stripe's Request-Id, for the audit trail
	Reached        bool   // the request reached, or may have reached, Stripe
	MayHaveCharged bool   // Stripe may have taken or may yet take money
	StripeType     string // error.type: invalid_request_error, card_error, …
	StripeCode     string // error.code: resource_missing, card_declined, …
	DeclineCode    string
	Message        string // Stripe's message, sanitised
	Err            error
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("stripe %s: http %d, request %q, reached %v", e.Op, e.HTTPStatus, e.RequestID, e.Reached)
	if e.StripeCode != "" {
		s += ", code " + e.StripeCode
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// Details is the public part of the failure.
func (e *CallError) Details() any {
	d := map[string]any{"provider": "stripe", "request_reached_provider": e.Reached, "may_have_charged": e.MayHaveCharged}
	if e.HTTPStatus != 0 {
		d["http_status"] = e.HTTPStatus
	}
	if e.RequestID != "" {
		d["request_id"] = e.RequestID
	}
	if e.StripeCode != "" {
		d["stripe_code"] = e.StripeCode
	}
	if e.DeclineCode != "" {
		d["decline_code"] = e.DeclineCode
	}
	return d
}

// MayHaveReached reports whether the request reached, or may have reached,
// Stripe (provider.Error): provider.Reached finds it in any error that
// wraps it. When it is false nothing was sent and nothing can have been
// charged.
func (e *CallError) MayHaveReached() bool { return e.Reached }

var _ provider.Error = (*CallError)(nil)

// MayHaveCharged reports whether err leaves open that Stripe took, or will
// take, money: a subscription request that reached Stripe and got no
// definite refusal. A caller keeps its hold (counts it as spent) when true.
func MayHaveCharged(err error) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.MayHaveCharged
}

// op describes a call for error messages.
type op struct {
	name    string
	what    string // "the customer lookup for a@b.example", "starting the subscription to price_…"
	charges bool   // a success charges money
	creates bool   // a success creates something (customer, session)
}

func newCallError(o op, s provider.Seen, err error) *CallError {
	return &CallError{Op: o.name, HTTPStatus: s.Status, RequestID: s.RequestID, Reached: s.Reached(), Err: err}
}

// translate turns a stripe-go error into a *fault.Error.
func (c *Client) translate(ctx context.Context, o op, s provider.Seen, err error) error {
	ce := newCallError(o, s, err)
	var se *stripego.Error
	if errors.As(err, &se) {
		if ce.HTTPStatus == 0 {
			ce.HTTPStatus = se.HTTPStatusCode
		}
		if ce.RequestID == "" {
			ce.RequestID = se.RequestID
		}
		ce.Reached = true
		ce.StripeType, ce.StripeCode, ce.DeclineCode = string(se.Type), string(se.Code), string(se.DeclineCode)
		ce.Message = sanitize(se.Msg)
	}
	switch {
	case ce.HTTPStatus == 0:
		return c.noAnswer(ctx, o, ce)
	case ce.HTTPStatus >= 500:
		return serverError(o, ce)
	case ce.HTTPStatus >= 400:
		return refusal(o, ce)
	}
	// A 2xx or 3xx that stripe-go could not decode.
	return unreadable(o, ce)
}

func (c *Client) noAnswer(ctx context.Context, o op, ce *CallError) error {
	why := "the connection failed"
	switch {
	case errors.Is(ce.Err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = "no answer within " + c.timeout.String()
	case errors.Is(ce.Err, context.Canceled):
		why = "the call was cancelled"
	}
	if !ce.Reached {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe was not reached for %s (%s); nothing was sent, so nothing was charged. Retry later.", o.what, why))
	}
	if o.charges {
		ce.MayHaveCharged = true
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe did not answer %s (%s). The request may have reached Stripe, so the subscription may exist and may be charged. "+
				"Retry with the same idempotency key: Stripe then returns the original result instead of starting a second subscription.", o.what, why))
	}
	if o.creates {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe did not answer %s (%s); the request may have reached Stripe, but nothing was charged. Retry with the same idempotency key.", o.what, why))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Stripe did not answer %s (%s); nothing was charged. Retry later.", o.what, why))
}

func serverError(o op, ce *CallError) error {
	said := providerSaid(ce)
	if o.charges {
		// Stripe saves a 500 under the idempotency key once the endpoint
		// started, so the outcome may be a subscription after all.
		ce.MayHaveCharged = true
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe failed %s with HTTP %d%s. The request reached Stripe, which may have started the subscription and may charge for it: "+
				"check the customer's subscriptions before starting another, and never retry with a new idempotency key.", o.what, ce.HTTPStatus, said))
	}
	if o.creates {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe failed %s with HTTP %d%s. The request reached Stripe, which may have done it anyway; nothing was charged. "+
				"Retry later with the same idempotency key.", o.what, ce.HTTPStatus, said))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Stripe failed %s with HTTP %d%s; nothing was charged. Retry later.", o.what, ce.HTTPStatus, said))
}

func refusal(o op, ce *CallError) error {
	said := providerSaid(ce)
	switch s := ce.HTTPStatus; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		// Stripe's message names part of the key: it is dropped, even from
		// the internal cause that may be logged.
		ce.Message, ce.Err = "", errors.New("authentication failed; Stripe's message withheld")
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Stripe refused this server's credentials for %s (HTTP %d); nothing was charged. An operator must check %s.",
			o.what, s, SecretKeyEnv))
	case ce.StripeType == string(stripego.ErrorTypeCard) || s == http.StatusPaymentRequired && ce.StripeCode == string(stripego.ErrorCodeCardDeclined):
		code := ce.StripeCode
		if ce.DeclineCode != "" {
			code += ", " + ce.DeclineCode
		}
		return fault.Wrap(ce, CardDeclined, fmt.Sprintf(
			"Stripe declined the saved payment method for %s: %s (%s). Nothing was charged and nothing was started. "+
				"The human can add another card with billing_setup.", o.what, strings.TrimSuffix(ce.Message, "."), code))
	case s == http.StatusConflict:
		// idempotency_key_in_use: the first request with this key is still
		// running at Stripe and may yet succeed.
		ce.MayHaveCharged = o.charges
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe is still running an earlier request with the same idempotency key for %s (HTTP 409%s). "+
				"It may yet succeed%s: retry with the same key in a few seconds.", o.what, said, chargeNote(o)))
	case s == http.StatusTooManyRequests:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Stripe is rate-limiting tollgate (HTTP 429) for %s; nothing was charged. Retry in a minute.", o.what))
	case ce.StripeType == string(stripego.ErrorTypeIdempotency):
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Stripe refused %s: its idempotency key was already used for a different request (HTTP %d%s). This request changed and charged nothing.",
			o.what, s, said))
	}
	return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
		"Stripe refused %s (HTTP %d%s); nothing was charged.", o.what, ce.HTTPStatus, said))
}

func chargeNote(o op) string {
	if o.charges {
		return " and charge"
	}
	return ""
}

func unreadable(o op, ce *CallError) error {
	if o.charges {
		ce.MayHaveCharged = true
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe's answer to %s could not be read (HTTP %d). The request reached Stripe, so the subscription may exist and may be charged: "+
				"retry with the same idempotency key to get the original result.", o.what, ce.HTTPStatus))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Stripe's answer to %s could not be read (HTTP %d); nothing was charged. Retry later.", o.what, ce.HTTPStatus))
}

// unexpected reports a 2xx answer whose content tollgate cannot use.
func unexpected(o op, s provider.Seen, why string) error {
	ce := newCallError(o, s, errors.New(why))
	if o.charges {
		ce.MayHaveCharged = true
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Stripe's answer to %s was not usable (%s). The request reached Stripe, so the subscription may exist and may be charged: "+
				"check it in Stripe before starting another.", o.what, why))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Stripe's answer to %s was not usable (%s); nothing was charged.", o.what, why))
}

func providerSaid(ce *CallError) string {
	if ce.Message == "" {
		return ""
	}
	s := ": " + ce.Message
	if ce.StripeCode != "" {
		s += " (" + ce.StripeCode + ")"
	}
	return s
}

// sanitize keeps a provider message printable and bounded before it is
// shown to an agent.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
