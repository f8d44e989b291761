package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/tools/provider"
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

// settle is step 10, the third phase: commit what the provider charged,
// or release; keep the result for replays; audit the outcome; all in one
// round trip. When the provider was reached and the outcome is unknown (a
// timeout, a 5xx after the request went out, a registration paused for the
// owner), the held amount is committed: counting money that may not have
// been spent is safe, letting the cap miss money that was is not. Such
// commits are audited for reconciliation.
func (p *pipelineCall) settle(ctx context.Context, sp *Hold, charge *Charge, key *phase.Key, fence string, res *mcp.CallToolResult) *mcp.CallToolResult {
	ctx = context.WithoutCancel(ctx)
	st := phase.Settle{Call: p.phaseCall()}
	var e sessions.Entry
	switch {
	case sp == nil:
		e = p.entry("tool_result", sessions.DecisionOK)
	default:
		actual, requestID, reason := committed(p.cfg.Log, sp, charge, res)
		known := charge != nil && !charge.Unknown
		if actual != nil {
			st.Commit = &phase.Commit{HoldID: sp.ID, Actual: *actual}
			if known {
				st.Commit.With = charge.With
			}
			e = p.entry("commit", sessions.DecisionOK)
			if known && charge.Bind != nil {
				b := *charge.Bind
				b.Subscription.Human = p.c.Subject
				if chain := p.c.Act.Chain(); len(chain) > 0 {
					b.Subscription.Agent = chain[0]
				} else {
					b.Subscription.Agent = p.c.ClientID
				}
				st.Commit.Bind = &b
				if e.Detail == nil {
					e.Detail = map[string]string{}
				}
				e.Detail["subscription"] = b.Subscription.ID
			}
			if charge != nil && charge.Note != "" {
				st.Commit.Note = &phase.Note{Key: charge.Note, Ref: charge.NoteRef}
			}
			e.Amount, e.ProviderRequestID = actual, requestID
			p.rec.Amount, p.rec.ProviderRequestID = actual, requestID
		} else {
			reason = "no charge reported"
			if res.IsError {
				reason = string(resultCode(res))
			}
			st.Release = &phase.Release{HoldID: sp.ID, Reason: reason}
			held := sp.Held
			e = p.entry("release", sessions.DecisionDeny)
			e.Amount = &held
			p.rec.Amount = nil
		}
		e.Reason, e.Provider = reason, p.t.Provider
		if e.Detail == nil {
			e.Detail = map[string]string{}
		}
		e.Detail["hold"] = sp.ID
	}
	if res.IsError {
		e.Code = string(resultCode(res))
		if sp == nil {
			e.Decision = sessions.DecisionError
		}
	}
	if key != nil {
		if b, err := json.Marshal(res); err == nil {
			st.Complete = &phase.Complete{Key: *key, Fence: fence, Result: b}
		}
	}
	st.Entry = e
	out, err := p.cfg.Phases.Settle(ctx, st)
	switch {
	case err != nil && st.Commit != nil:
		actual := st.Commit.Actual
		p.cfg.Log.Error("commit failed after the provider charged", "hold", sp.ID, "amount", actual, "err", err)
		res = Refuse(provider.AfterCall(fault.Wrap(err, fault.CodeOf(err), fmt.Sprintf(
			"the provider may have charged %s but the ledger could not record it; the hold stays listed for reconciliation (tollgate spend holds). Do not retry.", actual))))
		p.completeAlone(ctx, key, fence, res)
	case err != nil:
		p.cfg.Log.Error("the call's outcome could not be recorded", "tool", p.t.def.Name, "err", err)
	default:
		p.rec.outcomeAudited = true
		if st.Commit != nil {
			observe.Spent(ctx, p.t.Provider, st.Commit.Actual.Minor)
		}
	}
	if out.ReleaseErr != nil {
		p.cfg.Log.Error("releasing a hold failed; it expires on its own", "hold", sp.ID, "err", out.ReleaseErr)
	}
	if out.IdemError != nil {
		p.cfg.Log.Error("idempotency complete failed: a retry may run again", "tool", p.t.def.Name, "err", out.IdemError)
	}
	for i, r := range out.With {
		if r == int64(0) && i < len(st.Commit.With) {
			p.cfg.Log.Warn("a step of the commit wrote nothing: the human's linked Cloudflare account changed while the call ran", "step", st.Commit.With[i].Name, "hold", sp.ID)
		}
	}
	if out.NoteErr != nil {
		p.cfg.Log.Error("the committed charge was not noted for reconcile; spend reconcile will list it as charged_without_commit", "hold", sp.ID, "err", out.NoteErr)
	}
	return res
}

// completeAlone keeps a result for replays outside the third phase (when
// the commit stopped it).
func (p *pipelineCall) completeAlone(ctx context.Context, key *phase.Key, fence string, res *mcp.CallToolResult) {
	if key == nil {
		return
	}
	b, err := json.Marshal(res)
	if err == nil {
		err = p.cfg.Idem.Complete(ctx, p.c.Subject, key.Tool, key.Key, fence, b)
	}
	if err != nil {
		p.cfg.Log.Error("idempotency complete failed: a retry may run again", "tool", p.t.def.Name, "err", err)
	}
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

// committed decides what a paid call's settle commits, if anything: what
// the handler reported it was charged (never more than was held, in the
// held currency: the cap and the budgets admitted the hold, not what a
// provider reported), or else, after a refusal whose outcome is unknown
// once the provider was reached, the whole held amount. nil releases the
// hold. A charge marked Unknown reports no amount: only the refusal
// decides.
func committed(log *slog.Logger, sp *Hold, charge *Charge, res *mcp.CallToolResult) (actual *money.Money, requestID, reason string) {
	if charge != nil && !charge.Unknown {
		amt := charge.Amount
		if amt.Currency != sp.Held.Currency || amt.Minor > sp.Held.Minor || amt.Minor < 0 {
			log.Warn("a provider reported a charge outside its hold; the held amount is counted", "hold", sp.ID, "reported", amt, "held", sp.Held)
			amt = sp.Held
		}
		return &amt, charge.RequestID, ""
	}
	if res.IsError && providerCalled(res) && outcomeUnknown(resultCode(res)) {
		held := sp.Held
		return &held, "", "outcome unknown after the provider was reached (" + string(resultCode(res)) + "); the held amount is counted until reconciled"
	}
	return nil, "", ""
}
