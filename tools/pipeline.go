package tools

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// Phases runs the guard's Redis steps, one fused round trip per phase
// (gates/phase): before anything is quoted or asked, right before the
// provider, and after it.
type Phases interface {
	Pre(ctx context.Context, p phase.Pre) (phase.PreResult, error)
	Admit(ctx context.Context, a phase.Admit) (phase.AdmitResult, error)
	Settle(ctx context.Context, s phase.Settle) (phase.SettleResult, error)
}

// Idempotency remembers creating calls (gates/idempotency); the phases
// take and complete the lock, these are the paths around them.
type Idempotency interface {
	Complete(ctx context.Context, principal, tool, key, fence string, result []byte) error
	Abort(ctx context.Context, principal, tool, key, fence string) error
	UpstreamKey(ourKey, provider string) string
}

// LoopGuard learns from refusals (gates/loopguard); the first phase checks
// and counts the calls.
type LoopGuard interface {
	Refused(ctx context.Context, c loopguard.Call, code fault.Code) error
}

// SessionReader reads the sessions above a task, for budgets carved from
// a parent's.
type SessionReader interface {
	Get(ctx context.Context, principal, sid string) (sessions.Session, error)
	Check(ctx context.Context, principal, sid, jti string) error
}

// PipelineConfig configures steps 4–8 and 10 of the guard.
type PipelineConfig struct {
	Phases   Phases
	Tenancy  Tenancy
	Idem     Idempotency
	Loop     LoopGuard
	Sessions SessionReader
	Trail    Trail
	Gates    GateConfig
	Log      *slog.Logger
	// Caps and CapMax make the cap_raise gate: a paid call the month's cap
	// cannot take asks the human to raise it, up to CapMax (--cap-max).
	// Nil Caps or a zero CapMax: no such gate; the hold refuses.
	Caps   CapRaiser
	CapMax money.Money
	// HandlerDeadline bounds step 9 (default 5m; keep it under the hold
	// TTL and the idempotency lock).
	HandlerDeadline time.Duration
}

// Quote is what a paid call will cost, decided before anything is held.
type Quote struct {
	Amount money.Money
	Item   string // what is bought, for the audit trail and gates
	Detail any    // what the quote decided that the handler needs (e.g. the term)
	// Recurring, for a subscription, is what it may charge per calendar
	// month of charge; the hold then admits it only within every future
	// month's cap (spend.HoldRequest.Recurring).
	Recurring money.Money
}

// pipelineCall is steps 2 and 4–10 of SPEC §7 for one call, after the
// guard's steps 1 and 3: the resources the token allows, the session, the
// loop guard, idempotency, the principal's own account, the quote, the
// human gates, the hold, the handler, and the commit or release. Any
// refusal before the handler runs means no provider was called, and says
// so.
type pipelineCall struct {
	cfg  PipelineConfig
	t    Tool
	c    *auth.Claims
	rec  *callRecord
	args any   // the arguments, bound once into the tool's type
	f    facts // what the handler gets besides them, filled step by step
	loop loopguard.Call
	// gateDigest is the arguments' digest without idempotency_key and
	// approval_id.
	gateDigest string
	// capRead parses the month read in the first phase for the cap_raise
	// gate (nil when it was not read there).
	capRead func() (spend.Status, error)
}

func (p *pipelineCall) run(ctx context.Context, req mcp.CallToolRequest, args map[string]any) *mcp.CallToolResult {
	// Step 4: the resource this call touches must be one the token names.
	var target domainname.Name
	if p.t.Target != "" {
		_, endStep := observe.Step(ctx, "resources")
		name, err := p.target(args)
		endStep(err)
		if err != nil {
			return p.refuse(ctx, err)
		}
		target = name
		p.f.target = name
	}
	// A paid call needs a task budget for its provider: refused before
	// anything is read, quoted, asked or held.
	if p.t.Paid {
		if err := p.needBudget(); err != nil {
			return p.refuse(ctx, err)
		}
	}
	var digest string
	if p.t.Metered || p.t.Creating || p.t.run.asks() {
		d, err := argsDigestWithout(args, "idempotency_key", "approval_id")
		if err != nil {
			return p.refuse(ctx, err)
		}
		digest = d
	}
	p.gateDigest = digest

	// The first phase, one Redis round trip: step 2 (the session, live on
	// every call), step 5 (loop guard and rate limit for calls that reach a
	// provider), step 6's look at the idempotency record (a replay never
	// quotes or asks again), step 4b's read of the principal's own account,
	// and the call's audit entry.
	pre := phase.Pre{Call: p.phaseCall(), Entry: p.entry("tool_call", sessions.DecisionAllow)}
	if p.t.Metered {
		p.loop = loopguard.Call{Principal: p.c.Subject, Session: p.c.SessionID, Tool: p.t.def.Name, Digest: digest}
		pre.Loop = &p.loop
	}
	var idemKey *phase.Key
	if p.t.Creating {
		key, _ := args["idempotency_key"].(string)
		if key == "" {
			key = idempotency.DeriveKey(p.c.Subject, p.t.def.Name, digest)
		}
		idemKey = &phase.Key{Tool: p.t.def.Name, Key: key, Digest: digest}
		pre.Peek = idemKey
	}
	var finishTenant func(context.Context, any) (Tenant, error)
	if p.t.Account {
		var zone domainname.Name
		if p.t.Owned {
			zone = target
		}
		step, finish := p.cfg.Tenancy.Read(p.c.Subject, zone)
		pre.Extra, finishTenant = []fuse.Step{step}, finish
	}
	capStep, capParse, readCap := p.capRaiseRead()
	if readCap {
		pre.Extra = append(pre.Extra, capStep)
	}
	sctx, endStep := observe.Step(ctx, "pre")
	pr, err := p.cfg.Phases.Pre(sctx, pre)
	endStep(err)
	if err != nil {
		return p.refuse(ctx, err)
	}
	if pr.Replay != nil {
		return p.replay(ctx, pr.Replay)
	}
	if readCap && len(pr.Extra) > 0 {
		reply := pr.Extra[len(pr.Extra)-1]
		p.capRead = func() (spend.Status, error) { return capParse(reply) }
	}
	p.rec.audited = true
	// Step 4b: the principal's own account, and the zone inside it.
	// Resolving may renew the credential at Cloudflare; nothing is held
	// or sent before it.
	if finishTenant != nil {
		sctx, endStep := observe.Step(ctx, "tenant")
		t, err := p.tenant(sctx, target, finishTenant, pr.Extra[0])
		endStep(err)
		if err != nil {
			return p.refuse(ctx, err)
		}
		p.f.tenant = t
	}
	// Read-only tools and calls that neither create, pay nor ask are done
	// with their one round trip.
	if !p.t.Creating && !p.t.Paid && !p.t.run.asks() {
		out := p.t.run.run(ctx, p.f, p.args)
		if out.account != "" {
			p.rec.Account = out.account
		}
		if out.res.IsError {
			p.noteRefusal(ctx, out.res)
		}
		return out.res
	}
	// A paid call is quoted first: the purchase gate shows the exact price.
	var q *Quote
	if p.t.Paid {
		sctx, endStep := observe.Step(ctx, "quote")
		qq, err := p.t.run.quote(sctx, p.f, p.args)
		endStep(err)
		if err != nil {
			return p.refuse(ctx, err)
		}
		q = &qq
	}
	// Step 7: human gates. Asking ends this round; the retry starts over.
	sctx, endStep = observe.Step(ctx, "gate")
	res, err := p.gate(sctx, req, args, q)
	endStep(err)
	if err != nil {
		return p.refuse(ctx, err)
	}
	if res != nil {
		return res
	}
	// The second phase, one round trip, right before the provider: the
	// session re-checked (a revoke that landed while the call was quoted or
	// asked stops it here), step 6's idempotency lock, and step 8's hold of
	// the quoted amount against the cap and every task budget, audited.
	ad := phase.Admit{Call: p.phaseCall(), Begin: idemKey}
	if p.t.Paid {
		budgets, err := p.budgets(ctx)
		if err != nil {
			return p.refuse(ctx, err)
		}
		ad.Hold = &spend.HoldRequest{Principal: p.c.Subject, Provider: p.t.Provider, Amount: q.Amount,
			Budgets: budgets, Tool: p.t.def.Name, Description: q.Item, Recurring: q.Recurring}
		amt := q.Amount
		ad.Entry = p.entry("hold", sessions.DecisionOK)
		ad.Entry.Amount, ad.Entry.Provider = &amt, p.t.Provider
	}
	sctx, endStep = observe.Step(ctx, "admit")
	ar, err := p.cfg.Phases.Admit(sctx, ad)
	endStep(err)
	if err != nil {
		if ar.Idem.Fence != "" {
			p.abort(ctx, idemKey, ar.Idem.Fence)
		}
		return p.refuse(ctx, err)
	}
	if ar.Idem.State == idempotency.Replay {
		// The same call completed between the two phases.
		return p.replay(ctx, ar.Idem.Result)
	}
	var hold *Hold
	if p.t.Paid {
		amt := ar.Hold.Amount
		p.rec.Amount, p.rec.Provider = &amt, p.t.Provider
		hold = &Hold{Quote: *q, ID: ar.Hold.ID, Held: ar.Hold.Amount, UpstreamKey: p.cfg.Idem.UpstreamKey(ar.Idem.Key, p.t.Provider)}
		p.f.hold = *hold
	}
	// Step 9: the handler calls the provider in the principal's own
	// account with that account's credential (step 4b), within a deadline
	// shorter than the hold's and the idempotency lock's.
	hctx, cancel := context.WithTimeout(ctx, p.cfg.handlerDeadline())
	hctx, endStep = observe.Step(hctx, "handler")
	out := p.t.run.run(hctx, p.f, p.args)
	endStep(nil)
	cancel()
	if out.account != "" {
		p.rec.Account = out.account
	}
	res = out.res
	// Step 10, the third phase, one round trip: commit or release, keep
	// the result, and audit the outcome. Once the handler has run, the
	// result is kept even when it is a refusal: a retry must not reach the
	// provider a second time (use another idempotency_key to try again on
	// purpose).
	sctx, endStep = observe.Step(ctx, "settle")
	res = p.settle(sctx, hold, out.charge, idemKey, ar.Idem.Fence, res)
	endStep(nil)
	if res.IsError {
		p.noteRefusal(ctx, res)
	}
	return res
}

// phaseCall names the caller for the phases.
func (p *pipelineCall) phaseCall() phase.Call {
	return phase.Call{Principal: p.c.Subject, Session: p.c.SessionID, JTI: p.c.ID}
}

// entry is an audit entry of this call.
func (p *pipelineCall) entry(event, decision string) sessions.Entry {
	e := sessions.Entry{Event: event, Tool: p.t.def.Name, Principal: p.c.Subject, Actors: p.c.Act.Chain(),
		ClientID: p.c.ClientID, Session: p.c.SessionID, ParentSession: p.c.ParentSessionID, JTI: p.c.ID,
		ArgsDigest: p.rec.ArgsDigest, Decision: decision, TraceID: p.rec.TraceID}
	if p.rec.Target != "" || p.rec.Account != "" {
		e.Detail = map[string]string{}
		if p.rec.Target != "" {
			e.Detail["target"] = p.rec.Target
		}
		if p.rec.Account != "" {
			e.Detail["account"] = p.rec.Account
		}
	}
	return e
}

// replay answers a completed call's stored result.
func (p *pipelineCall) replay(ctx context.Context, stored []byte) *mcp.CallToolResult {
	var res mcp.CallToolResult
	if err := json.Unmarshal(stored, &res); err != nil {
		return p.refuse(ctx, fault.Wrap(err, fault.Internal, "the stored result of this call cannot be read; nothing was charged again"))
	}
	p.rec.replayed = true
	return &res
}

// handlerDeadline bounds a provider call so it ends before its hold and
// its idempotency lock can expire under it.
func (c PipelineConfig) handlerDeadline() time.Duration {
	if c.HandlerDeadline > 0 {
		return c.HandlerDeadline
	}
	return 5 * time.Minute
}

// refuse answers a refusal before the handler: the tool's provider call was
// not made, even when a quote or a gate's lookup read from the provider.
func (p *pipelineCall) refuse(ctx context.Context, err error) *mcp.CallToolResult {
	res := Refuse(provider.BeforeCall(err))
	p.noteRefusal(ctx, res)
	return res
}

// noteRefusal feeds the loop guard: the same refused call repeated is the
// loop the agent cannot see.
func (p *pipelineCall) noteRefusal(ctx context.Context, res *mcp.CallToolResult) {
	if !p.t.Metered || p.loop.Principal == "" {
		return
	}
	switch resultCode(res) {
	case fault.NotFound, fault.SessionRevoked, fault.SessionExpired, sessions.TokenRevoked:
		return // a dead session is no loop: its every call is refused anyway
	}
	if err := p.cfg.Loop.Refused(context.WithoutCancel(ctx), p.loop, resultCode(res)); err != nil {
		p.cfg.Log.Warn("loop guard could not record a refusal", "tool", p.t.def.Name, "err", err)
	}
}

// abort frees the idempotency lock of a call that never reached the
// provider, so that a retry runs at once.
func (p *pipelineCall) abort(ctx context.Context, key *phase.Key, fence string) {
	if key == nil {
		return
	}
	if err := p.cfg.Idem.Abort(context.WithoutCancel(ctx), p.c.Subject, key.Tool, key.Key, fence); err != nil {
		p.cfg.Log.Warn("idempotency abort failed", "tool", p.t.def.Name, "err", err)
	}
}

// argsDigestWithout digests the canonical arguments without the named
// keys (an idempotency key is not part of what the call does).
func argsDigestWithout(args map[string]any, drop ...string) (string, error) {
	m := make(map[string]any, len(args))
	for k, v := range args {
		m[k] = v
	}
	for _, k := range drop {
		delete(m, k)
	}
	return idempotency.Digest(m)
}
