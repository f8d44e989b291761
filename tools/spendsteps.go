package tools

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// target is step 4: the domain argument, checked against the token's
// tollgate:resources. A paid call needs the domain named there; a free one
// is limited only when the token names domains.
func (p *pipelineCall) target(args map[string]any) (domainname.Name, error) {
	raw, _ := args[p.t.Target].(string)
	if p.rec != nil {
		p.rec.Target = auditTarget(raw)
	}
	if raw == "" {
		return "", fault.Newf(fault.InvalidArgument, "%s is required; nothing was charged", p.t.Target)
	}
	named, limited := p.c.AuthorizationDetails.Domains()
	writes := p.t.def.Annotations.ReadOnlyHint == nil || !*p.t.def.Annotations.ReadOnlyHint
	if !limited && writes {
		// SPEC §4.2: a token naming no domains may only read its own
		// account; what changes something must be named.
		return "", fault.Newf(fault.ResourceForbidden,
			"this task token names no domains, so it may only read; %s changes %q, so exchange for a token whose authorization_details name it (tollgate:resources). Nothing was held, sent or changed.", p.t.def.Name, raw)
	}
	if p.t.WorkerTarget {
		// A Worker stands for the one domain its name encodes.
		name, err := domainname.DomainOfWorker(raw)
		if err != nil {
			return "", err
		}
		if limited && !slices.Contains(named, string(name)) {
			return "", fault.Newf(fault.ResourceForbidden,
				"Worker %q serves %s, which this task's token does not name (%s). Nothing was uploaded or changed.", raw, name, strings.Join(named, " "))
		}
		return name, nil
	}
	if !limited {
		return domainname.Parse(raw)
	}
	allowed := make([]domainname.Name, 0, len(named))
	for _, d := range named {
		n, err := domainname.Parse(d)
		if err != nil {
			continue
		}
		allowed = append(allowed, n)
	}
	return domainname.Allowed(raw, allowed)
}

// auditTarget is the target argument as the audit trail keeps it: at most
// a domain's length, printable ASCII only (a look-alike shows as its
// escapes, never as lookalike glyphs).
func auditTarget(raw string) string {
	q := strconv.QuoteToASCII(raw)
	q = q[1 : len(q)-1]
	if len(q) > 256 {
		q = q[:256]
	}
	return q
}

// hold is step 8: hold the quoted amount against the principal's
// monthly cap and every task budget along the session chain, in one
// atomic ledger call. The hold is audited before any provider call; if it
// cannot be audited it is released and the call refused.
func (p *pipelineCall) hold(ctx context.Context, q Quote, idem *idemRun) (*Spend, error) {
	if err := p.needBudget(); err != nil {
		return nil, err
	}
	budgets, err := p.budgets(ctx)
	if err != nil {
		return nil, err
	}
	holdID := idem.out.Fence
	h, err := p.cfg.Ledger.Hold(ctx, spend.HoldRequest{
		HoldID: holdID, Principal: p.c.Subject, Provider: p.t.Provider, Amount: q.Amount,
		Budgets: budgets, Tool: p.t.def.Name, Description: q.Item,
	})
	if err != nil {
		return nil, err
	}
	amt := h.Amount
	p.rec.Amount, p.rec.Provider = &amt, p.t.Provider
	if err := p.audit(ctx, "hold", h.ID, amt, ""); err != nil {
		_ = p.cfg.Ledger.Release(context.WithoutCancel(ctx), p.c.Subject, h.ID, "hold not recorded in the audit trail")
		return nil, fault.Wrap(err, fault.Unavailable, "the audit trail is unavailable, so nothing was bought; nothing was charged. Retry shortly")
	}
	return &Spend{Quote: q, HoldID: h.ID, Held: h.Amount, UpstreamKey: p.cfg.Idem.UpstreamKey(idem.out.Key, p.t.Provider)}, nil
}

// needBudget: a paid call needs a task budget for its provider, which is
// where the exchange policy's per-agent limit (MaxSpend) was applied.
// Without one only the principal's monthly cap would bound the agent.
func (p *pipelineCall) needBudget() error {
	if _, ok := p.c.AuthorizationDetails.Budget(p.t.Provider); !ok {
		return fault.Newf(BudgetRequired,
			"this task token carries no tollgate:spend budget for %s, so it may not pay there; exchange for a token with one (authorization_details). Nothing was asked, held or charged.", p.t.Provider)
	}
	return nil
}

// BudgetRequired: a paid call whose token has no task budget.
const BudgetRequired fault.Code = "budget_required"

// budgets lists the tollgate:spend budgets for the tool's provider along
// the session chain, innermost first: a child's spending also counts
// against every ancestor's budget (SPEC §4.2).
func (p *pipelineCall) budgets(ctx context.Context) ([]spend.Budget, error) {
	var out []spend.Budget
	if m, ok := p.c.AuthorizationDetails.Budget(p.t.Provider); ok {
		out = append(out, spend.Budget{Session: p.c.SessionID, Max: m})
	}
	parent := p.c.ParentSessionID
	for depth := 0; parent != "" && depth < auth.MaxDelegationDepth; depth++ {
		s, err := p.cfg.Sessions.Get(ctx, p.c.Subject, parent)
		if err != nil {
			if fault.CodeOf(err) == fault.NotFound {
				break // a parent of another principal keeps its own ledger
			}
			return nil, err
		}
		if len(s.AuthorizationDetails) > 0 {
			ds, err := auth.ParseAuthorizationDetails(s.AuthorizationDetails)
			if err != nil {
				return nil, fault.Wrap(err, fault.Internal, "a parent session's budget cannot be read; nothing was charged")
			}
			if m, ok := ds.Budget(p.t.Provider); ok {
				out = append(out, spend.Budget{Session: s.ID, Max: m})
			}
		}
		parent = s.Parent
	}
	return out, nil
}

// settle is step 10: commit what the provider charged, or release. When
// the provider was reached and the outcome is unknown (a timeout, a 5xx
// after the request went out, a registration paused for the owner), the
// held amount is committed: counting money that may not have been spent
// is safe, letting the cap miss money that was is not. Such commits are
// audited for reconciliation.
func (p *pipelineCall) settle(ctx context.Context, sp *Spend, res *mcp.CallToolResult) error {
	ctx = context.WithoutCancel(ctx)
	actual, reason := sp.charged, ""
	if actual == nil && res.IsError && providerCalled(res) && outcomeUnknown(resultCode(res)) {
		held := sp.Held
		actual, reason = &held, "outcome unknown after the provider was reached ("+string(resultCode(res))+"); the held amount is counted until reconciled"
	}
	if actual == nil {
		reason := "no charge reported"
		if res.IsError {
			reason = string(resultCode(res))
		}
		p.release(ctx, sp, reason)
		return nil
	}
	p.rec.Amount, p.rec.ProviderRequestID = actual, sp.requestID
	if err := p.cfg.Ledger.Commit(ctx, p.c.Subject, sp.HoldID, *actual); err != nil {
		p.cfg.Log.Error("commit failed after the provider charged", "hold", sp.HoldID, "amount", *actual, "err", err)
		_ = p.audit(ctx, "commit", sp.HoldID, *actual, "commit failed: "+string(fault.CodeOf(err)))
		return fault.Wrap(err, fault.CodeOf(err), fmt.Sprintf(
			"the provider may have charged %s but the ledger could not record it; the hold stays listed for reconciliation (tollgate spend holds). Do not retry.", *actual))
	}
	if err := p.audit(ctx, "commit", sp.HoldID, *actual, reason); err != nil {
		// The money is recorded in the ledger; the trail misses one entry.
		p.cfg.Log.Error("the commit is in the ledger but not in the audit trail", "hold", sp.HoldID, "err", err)
	}
	return nil
}

// release frees a hold (best effort: an unreleased hold expires) and
// audits it.
func (p *pipelineCall) release(ctx context.Context, sp *Spend, reason string) {
	ctx = context.WithoutCancel(ctx)
	if err := p.cfg.Ledger.Release(ctx, p.c.Subject, sp.HoldID, reason); err != nil {
		p.cfg.Log.Error("releasing a hold failed; it expires on its own", "hold", sp.HoldID, "err", err)
	}
	p.rec.Amount = nil
	_ = p.audit(ctx, "release", sp.HoldID, sp.Held, reason)
}

// outcomeUnknown reports refusals after which the provider may still have
// charged: no answer, a 5xx, a paused workflow, our own failure. A definite
// refusal (4xx, declined card, unavailable name) charged nothing.
func outcomeUnknown(code fault.Code) bool {
	switch code {
	// stripe.ProviderError is the same code as cloudflare.ProviderError.
	case cloudflare.ProviderError, cloudflare.ActionRequired, fault.Internal, fault.Unavailable:
		return true
	}
	return false
}

// providerCalled reads whether a refusal says the provider was reached.
func providerCalled(res *mcp.CallToolResult) bool {
	b, ok := errorBody(res)
	return !ok || b.ProviderCalled // unknown: assume it was
}

func (p *pipelineCall) audit(ctx context.Context, event, holdID string, amount money.Money, reason string) error {
	e := sessions.Entry{Event: event, Tool: p.t.def.Name, Principal: p.c.Subject, Actors: p.c.Act.Chain(),
		ClientID: p.c.ClientID, Session: p.c.SessionID, ParentSession: p.c.ParentSessionID, JTI: p.c.ID,
		ArgsDigest: p.rec.ArgsDigest, Decision: sessions.DecisionOK, Reason: reason, Provider: p.t.Provider,
		ProviderRequestID: p.rec.ProviderRequestID, Amount: &amount, Detail: map[string]string{"hold": holdID}}
	if reason != "" && event == "release" {
		e.Decision = sessions.DecisionDeny
	}
	_, err := p.cfg.Trail.Append(ctx, e)
	if err != nil {
		p.cfg.Log.Error("audit append failed", "event", event, "hold", holdID, "err", err)
	}
	return err
}
