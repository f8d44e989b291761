// Package stripehook serves POST /webhooks/stripe: Stripe's signed events
// about the subscriptions subscription_start started. A renewal's
// invoice.paid is committed to the month of the invoice's period, with an
// audit entry naming the subscription, the human and the agent that
// started it; customer.subscription.deleted ends the recurring commitment.
//
// Every event is verified with stripe-go's webhook.ConstructEvent against
// the endpoint's signing secret (bad signature, stale timestamp, malformed
// JSON: 400, nothing recorded). Event types tollgate does not use and
// subscriptions tollgate does not know are answered 2xx (the latter with
// an audit note), so Stripe never retries them in a loop. An event id is
// recorded once: a replay is answered 200 and changes nothing. When the
// ledger cannot be reached the answer is 503 and the event id is
// forgotten, so Stripe's retry records it.
package stripehook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	stripego "github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Metadata keys subscription_start sets on a subscription (tools).
const (
	MetaPrincipal = "tollgate_principal"
	MetaHold      = "tollgate_hold"
)

// Ledger is the spend ledger as the webhook uses it.
type Ledger interface {
	SeenWebhookEvent(ctx context.Context, id string) (bool, error)
	ForgetWebhookEvent(ctx context.Context, id string)
	SubscriptionOf(ctx context.Context, principal, id string) (spend.Subscription, bool, error)
	RenewStep(r spend.Renewal) (fuse.Step, func(reply any) (replay, known bool, err error), error)
	EndRecurring(ctx context.Context, principal, provider, commitment string) (bool, error)
}

// Trail is the audit trail.
type Trail interface {
	Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error)
	Fused(ctx context.Context, e sessions.Entry, rdb redis.Scripter, steps ...fuse.Step) (sessions.FusedResult, error)
}

// Handler serves the Stripe webhook endpoint.
type Handler struct {
	Secret string // the endpoint's signing secret (whsec_…)
	Ledger Ledger
	Trail  Trail
	Redis  redis.Scripter
	Log    *slog.Logger
	// Wait, when Replicas > 0, has a renewal confirmed by that many
	// replicas (Redis WAIT, in the same round trip). A renewal fewer
	// acknowledged is answered 503 so that Stripe retries it (recording
	// an invoice again changes nothing), and reported to Short.
	Wait  fuse.Wait
	Short func(acked int)
}

// errShort is a renewal recorded on the Redis master that fewer replicas
// than asked acknowledged in time.
var errShort = errors.New("the renewal was recorded, but Redis could not confirm it on the replicas asked for (--redis-wait-replicas) within --redis-wait-timeout")

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpx.Fail(w, http.StatusMethodNotAllowed, "method_not_allowed", "Stripe webhooks are POSTed here")
		return
	}
	if h.Secret == "" {
		httpx.Fail(w, http.StatusServiceUnavailable, "not_configured", "this server has no --stripe-webhook-secret; nothing was recorded")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "the body could not be read (too large?); nothing was recorded")
		return
	}
	ev, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), h.Secret)
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_signature", "the event's signature, timestamp or body did not verify ("+err.Error()+"); nothing was recorded")
		return
	}
	if ev.ID == "" || len(ev.ID) > 255 || ev.Data == nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "the event has no id or data; nothing was recorded")
		return
	}
	ctx := r.Context()
	switch ev.Type {
	case "invoice.paid":
		var inv stripego.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil || inv.ID == "" {
			httpx.Fail(w, http.StatusBadRequest, "invalid_request", "the invoice in the event is malformed; nothing was recorded")
			return
		}
		h.once(w, ctx, ev.ID, func() error { return h.invoicePaid(ctx, ev.ID, &inv) })
	case "customer.subscription.deleted":
		var sub stripego.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil || sub.ID == "" {
			httpx.Fail(w, http.StatusBadRequest, "invalid_request", "the subscription in the event is malformed; nothing was recorded")
			return
		}
		h.once(w, ctx, ev.ID, func() error { return h.deleted(ctx, ev.ID, &sub) })
	default:
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "ignored": "event type " + string(ev.Type) + " is not used by tollgate"})
	}
}

// once runs do for an event id not recorded before.
func (h *Handler) once(w http.ResponseWriter, ctx context.Context, id string, do func() error) {
	seen, err := h.Ledger.SeenWebhookEvent(ctx, id)
	if err != nil {
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the ledger could not be reached; nothing was recorded. Stripe retries.")
		return
	}
	if seen {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "replay": true})
		return
	}
	if err := do(); errors.Is(err, errShort) {
		h.Ledger.ForgetWebhookEvent(ctx, id)
		h.Log.Warn("stripe renewal not confirmed by Redis replicas; Stripe will retry", "event", id, "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the renewal could not be confirmed on Redis replicas in time; Stripe retries, and recording it again changes nothing.")
		return
	} else if err != nil {
		h.Ledger.ForgetWebhookEvent(ctx, id)
		h.Log.Error("stripe webhook not recorded; Stripe will retry", "event", id, "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the event could not be recorded; nothing was changed. Stripe retries.")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"received": true})
}

// binding finds the subscription's binding through the principal named in
// its (signed) metadata.
func (h *Handler) binding(ctx context.Context, subID string, meta map[string]string) (spend.Subscription, bool, error) {
	p := meta[MetaPrincipal]
	if p == "" || subID == "" {
		return spend.Subscription{}, false, nil
	}
	return h.Ledger.SubscriptionOf(ctx, p, subID)
}

// unknown notes an event about a subscription tollgate does not know. The
// note goes to the principal the metadata names, when it names one, else
// to the log only.
func (h *Handler) unknown(ctx context.Context, eventID, kind, subID string, meta map[string]string) error {
	h.Log.Warn("stripe webhook about a subscription tollgate does not know; nothing recorded", "event", eventID, "type", kind, "subscription", subID)
	p := meta[MetaPrincipal]
	if p == "" {
		return nil
	}
	_, err := h.Trail.Append(ctx, sessions.Entry{Event: "webhook_unknown", Principal: p, Provider: spend.Stripe, Decision: sessions.DecisionDeny,
		Reason: "Stripe sent " + kind + " for a subscription tollgate has no record of; nothing was recorded",
		Detail: map[string]string{"subscription": trim(subID), "event": trim(eventID)}})
	return err
}

func (h *Handler) invoicePaid(ctx context.Context, eventID string, inv *stripego.Invoice) error {
	if inv.BillingReason == stripego.InvoiceBillingReasonSubscriptionCreate {
		return nil // the first period: subscription_start committed it
	}
	var subID string
	if inv.Subscription != nil {
		subID = inv.Subscription.ID
	}
	meta := map[string]string{}
	if inv.SubscriptionDetails != nil && inv.SubscriptionDetails.Metadata != nil {
		meta = inv.SubscriptionDetails.Metadata
	}
	b, ok, err := h.binding(ctx, subID, meta)
	if err != nil {
		return err
	}
	if !ok {
		return h.unknown(ctx, eventID, "invoice.paid", subID, meta)
	}
	// The invoice's period is its subscription line's: Stripe's
	// invoice.period_start is the period before a renewal.
	start, every := inv.PeriodStart, 1
	if inv.Lines != nil {
		for _, l := range inv.Lines.Data {
			if l == nil || l.Period == nil {
				continue
			}
			start = l.Period.Start
			if l.Price != nil && l.Price.Recurring != nil && l.Price.Recurring.Interval == stripego.PriceRecurringIntervalYear {
				every = 12
			}
			break
		}
	}
	mon := spend.MonthOf(time.Unix(start, 0))
	amt := money.Money{Minor: inv.AmountPaid, Currency: strings.ToLower(string(inv.Currency))}
	st, parse, err := h.Ledger.RenewStep(spend.Renewal{Principal: b.Principal, Provider: spend.Stripe, Commitment: b.Commitment,
		Invoice: inv.ID, Ref: b.ID, Amount: amt, Month: mon, EveryMonths: every})
	if err != nil {
		// A malformed amount is not worth a retry loop: note it.
		h.Log.Error("stripe renewal not recordable", "event", eventID, "invoice", inv.ID, "err", err)
		_, aerr := h.Trail.Append(ctx, sessions.Entry{Event: "renewal", Principal: b.Principal, Provider: spend.Stripe,
			Decision: sessions.DecisionError, Reason: "the renewal could not be recorded: " + err.Error(),
			Detail: map[string]string{"subscription": b.ID, "invoice": trim(inv.ID), "event": trim(eventID)}})
		return aerr
	}
	var actors []string
	if b.Agent != "" {
		actors = []string{b.Agent}
	}
	e := sessions.Entry{Event: "renewal", Principal: b.Principal, Actors: actors, Provider: spend.Stripe, Decision: sessions.DecisionOK,
		Amount: &amt, Reason: "Stripe charged a renewal of the subscription; committed to " + mon,
		Detail: map[string]string{"subscription": b.ID, "human": b.Human, "agent": b.Agent, "invoice": trim(inv.ID),
			"month": mon, "commitment": b.Commitment, "event": trim(eventID)}}
	wctx, acks := fuse.WithWait(ctx, h.Wait)
	f, err := h.Trail.Fused(wctx, e, h.Redis, st)
	if err != nil {
		return err
	}
	if !f.Replayed && len(f.Steps.Replies) > 0 {
		if _, _, err := parse(f.Steps.Replies[0]); err != nil {
			return err
		}
	}
	if acks.Short() {
		if h.Short != nil {
			h.Short(acks.Got)
		}
		return fmt.Errorf("%w (%d of %d)", errShort, acks.Got, acks.Asked)
	}
	return nil
}

func (h *Handler) deleted(ctx context.Context, eventID string, sub *stripego.Subscription) error {
	b, ok, err := h.binding(ctx, sub.ID, sub.Metadata)
	if err != nil {
		return err
	}
	if !ok {
		return h.unknown(ctx, eventID, "customer.subscription.deleted", sub.ID, sub.Metadata)
	}
	ended, err := h.Ledger.EndRecurring(ctx, b.Principal, spend.Stripe, b.Commitment)
	if err != nil {
		return err
	}
	reason := "the subscription was cancelled at Stripe; its recurring commitment ended"
	if !ended {
		reason = "the subscription was cancelled at Stripe; it had no recurring commitment left"
	}
	_, err = h.Trail.Append(ctx, sessions.Entry{Event: "subscription_ended", Principal: b.Principal, Provider: spend.Stripe,
		Decision: sessions.DecisionOK, Reason: reason,
		Detail: map[string]string{"subscription": b.ID, "human": b.Human, "agent": b.Agent, "commitment": b.Commitment, "event": trim(eventID)}})
	return err
}

func trim(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}
