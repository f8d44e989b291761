package tools

import (
	"context"
	"fmt"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
)

// CapRaiser reads a principal's month at a provider and raises its cap for
// that month (gates/spend).
type CapRaiser interface {
	Status(ctx context.Context, principal, provider string) (spend.Status, error)
	// MonthStatusStep is Status as a step of the guard's first phase.
	MonthStatusStep(principal, provider string) (fuse.Step, func(reply any) (spend.Status, error), error)
	RaiseCap(ctx context.Context, principal, provider, mon string, to money.Money) (spend.CapChange, bool, error)
}

// capRaise is what accepting a cap_raise gate does: raise the cap at
// provider for month to at least to.
type capRaise struct {
	provider, month string
	to              money.Money
}

// capRaiseAsk is the cap_raise gate (issue "money over time"): a paid call
// the month's cap cannot take asks the human to raise that cap, for this
// month only, by just enough, up to the operator's ceiling (--cap-max). A
// call past the ceiling is not asked about: its hold is refused with
// cap_exceeded. Only a human answers it (an elicitation sealed by this
// server, or an approval decided on the approvals page); no argument of
// the call can.
func (p *pipelineCall) capRaiseAsk(ctx context.Context, q *Quote) (*Ask, error) {
	caps, ceiling := p.cfg.Caps, p.cfg.CapMax
	if caps == nil || q == nil || ceiling.Minor <= 0 || q.Recurring.Minor > 0 {
		// Subscriptions are bounded by every future month's cap, which a
		// raise of this month cannot change.
		return nil, nil
	}
	st, err := p.capStatus(ctx)
	if err != nil {
		return nil, err
	}
	if q.Amount.Currency != st.Cap.Currency || q.Amount.Minor <= st.Remaining.Minor {
		return nil, nil
	}
	need := money.Money{Minor: st.Spent.Minor + st.Held.Minor + st.Due.Minor + q.Amount.Minor, Currency: st.Cap.Currency}
	if ceiling.Currency != need.Currency || need.Minor > ceiling.Minor {
		return nil, nil
	}
	msg := fmt.Sprintf("Raise the monthly cap at %s for %s from %s to %s (this month only) so that this purchase fits: %s for %s.\nMonth to date at %s: %s spent, %s held.",
		p.t.Provider, st.Month, st.Cap, need, q.Item, q.Amount, p.t.Provider, st.Spent, st.Held)
	return &Ask{Kind: human.CapRaise, Message: msg, Fields: map[string]string{
		"provider": p.t.Provider, "month": st.Month, "month_to_date": st.Spent.String(), "held": st.Held.String(),
		"item": q.Item, "price": q.Amount.String(), "cap": st.Cap.String(), "new_cap": need.String(), "cap_max": ceiling.String(),
	}, raise: &capRaise{provider: p.t.Provider, month: st.Month, to: need}}, nil
}

// capRaiseRead is the cap_raise gate's read of the month as a step of the
// first phase (nil when the gate is off or the tool is not paid), so a
// paid call pays no round trip of its own for it.
func (p *pipelineCall) capRaiseRead() (fuse.Step, func(any) (spend.Status, error), bool) {
	if !p.t.Paid || p.cfg.Caps == nil || p.cfg.CapMax.Minor <= 0 {
		return fuse.Step{}, nil, false
	}
	step, parse, err := p.cfg.Caps.MonthStatusStep(p.c.Subject, p.t.Provider)
	if err != nil {
		return fuse.Step{}, nil, false // read on its own when asked, which reports the error
	}
	return step, parse, true
}

// capStatus is the month read in the first phase, or read now when it was
// not (a retry that starts over reads it again either way).
func (p *pipelineCall) capStatus(ctx context.Context) (spend.Status, error) {
	if p.capRead != nil {
		return p.capRead()
	}
	return p.cfg.Caps.Status(ctx, p.c.Subject, p.t.Provider)
}

// raiseCap does what an accepted cap_raise gate asked, and audits it.
func (p *pipelineCall) raiseCap(ctx context.Context, r *capRaise, by string) error {
	ch, raised, err := p.cfg.Caps.RaiseCap(ctx, p.c.Subject, r.provider, r.month, r.to)
	if err != nil {
		return fault.Wrap(err, fault.CodeOf(err), "the cap could not be raised ("+fault.PublicOf(err)+"); nothing was held or charged, retry shortly")
	}
	if !raised {
		return nil // already at or above it (another call's raise)
	}
	e := p.entry("cap_raise", sessions.DecisionAllow)
	e.Provider = r.provider
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail["month"], e.Detail["from"], e.Detail["to"], e.Detail["by"] = r.month, ch.From.String(), ch.To.String(), by
	if _, err := p.cfg.Trail.Append(context.WithoutCancel(ctx), e); err != nil {
		p.cfg.Log.Error("audit append failed after a cap raise", "principal", p.c.Subject, "provider", r.provider, "err", err)
	}
	return nil
}

// capNotRaised: a call whose cap_raise gate was declined, cancelled,
// denied or expired fails as the hold would have, with cap_exceeded.
func capNotRaised(asks []Ask, err error) error {
	if len(asks) == 0 || asks[0].raise == nil {
		return err
	}
	switch fault.CodeOf(err) {
	case GateDeclined, GateCancelled, human.ApprovalDenied, human.ApprovalExpired, human.StateExpired:
		r := asks[0].raise
		return fault.Wrap(err, spend.CapExceeded, fmt.Sprintf(
			"the monthly cap at %s was not raised for %s (%s), so this purchase does not fit it. Nothing was held, charged or changed; an operator can set a standing cap with tollgate spend cap set --provider %s.",
			r.provider, r.month, fault.PublicOf(err), r.provider))
	}
	return err
}
