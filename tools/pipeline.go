package tools

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// Ledger holds money against caps and task budgets (gates/spend).
type Ledger interface {
	Hold(ctx context.Context, r spend.HoldRequest) (spend.Hold, error)
	Commit(ctx context.Context, principal, holdID string, actual money.Money) error
	Release(ctx context.Context, principal, holdID, reason string) error
}

// Idempotency remembers creating calls (gates/idempotency).
type Idempotency interface {
	Begin(ctx context.Context, principal, tool, key, digest string) (idempotency.Outcome, error)
	Complete(ctx context.Context, principal, tool, key, fence string, result []byte) error
	Abort(ctx context.Context, principal, tool, key, fence string) error
	UpstreamKey(ourKey, provider string) string
}

// LoopGuard rate-limits metered calls and stops loops (gates/loopguard).
type LoopGuard interface {
	Allow(ctx context.Context, c loopguard.Call) error
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
	Tenancy  Tenancy
	Ledger   Ledger
	Idem     Idempotency
	Loop     LoopGuard
	Sessions SessionReader
	Trail    Trail
	Gates    GateConfig
	Log      *slog.Logger
	// HandlerDeadline bounds step 9 (default 5m; keep it under the hold
	// TTL and the idempotency lock).
	HandlerDeadline time.Duration
}

// Quote is what a paid call will cost, decided before anything is held.
type Quote struct {
	Amount money.Money
	Item   string // what is bought, for the audit trail and gates
	Detail any    // what the quote decided that the handler needs (e.g. the term)
}

// Spend is a paid call's hold, for its handler.
type Spend struct {
	Quote       Quote
	HoldID      string
	Held        money.Money
	UpstreamKey string // deterministic provider idempotency key
	charged     *money.Money
	requestID   string
}

// Charged tells the pipeline what the provider actually took (≤ held) and
// its request id; without it, the hold is released.
func (s *Spend) Charged(actual money.Money, providerRequestID string) {
	s.charged, s.requestID = &actual, providerRequestID
}

type spendKey struct{}
type targetKey struct{}

// SpendFrom returns the paid call's hold.
func SpendFrom(ctx context.Context) *Spend {
	s, _ := ctx.Value(spendKey{}).(*Spend)
	return s
}

// TargetFrom returns the domain the call was allowed to touch (step 4), as
// a canonical name: handlers use it, never the raw argument.
func TargetFrom(ctx context.Context) (domainname.Name, bool) {
	n, ok := ctx.Value(targetKey{}).(domainname.Name)
	return n, ok
}

// withPipeline is steps 4–8 and 10 of SPEC §7, after the Guard (1–3): the
// resources the token allows, the loop guard, idempotency, the hold, and
// after the handler's provider call the commit or release. Any refusal
// before the handler runs means no provider was called, and says so.
func withPipeline(cfg PipelineConfig) middleware {
	return func(t Tool, next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, ok := IdentityFrom(ctx)
			if !ok {
				return Refuse(fault.New(fault.Unauthenticated, "no verified caller")), nil
			}
			p := &pipelineCall{cfg: cfg, t: t, c: id.Claims, rec: Record(ctx)}
			return p.run(ctx, req, next)
		}
	}
}

type pipelineCall struct {
	cfg        PipelineConfig
	t          Tool
	c          *auth.Claims
	rec        *CallRecord
	loop       loopguard.Call
	gateDigest string // the arguments' digest, without idempotency_key and approval_id
}

func (p *pipelineCall) run(ctx context.Context, req mcp.CallToolRequest, next server.ToolHandlerFunc) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	// Step 4: the resource this call touches must be one the token names.
	var target domainname.Name
	if p.t.Target != "" {
		name, err := p.target(args)
		if err != nil {
			return p.refuse(ctx, err)
		}
		target = name
		ctx = context.WithValue(ctx, targetKey{}, name)
	}
	// Read-only tools that reach no provider skip the rest: nothing to
	// rate-limit, remember, ask or hold.
	if !p.t.Metered && !p.t.Creating && !p.t.Paid && p.t.Ask == nil {
		return next(ctx, req)
	}
	digest, err := argsDigestWithout(args, "idempotency_key", "approval_id")
	if err != nil {
		return p.refuse(ctx, err)
	}
	p.gateDigest = digest
	// Step 5: loop guard and rate limit for calls that reach a provider.
	p.loop = loopguard.Call{Principal: p.c.Subject, Session: p.c.SessionID, Tool: p.t.def.Name, Digest: digest}
	if p.t.Metered {
		if err := p.cfg.Loop.Allow(ctx, p.loop); err != nil {
			return p.refuse(ctx, err)
		}
	}
	// Step 4b, after the rate limit (resolving may renew a credential at
	// Cloudflare): the principal's own account, and the zone inside it.
	// Nothing is held or sent before it.
	if p.t.Account {
		if ctx, err = p.tenant(ctx, target); err != nil {
			return p.refuse(ctx, err)
		}
	}
	// A paid call needs a task budget for its provider: refused before
	// anything is quoted, asked or held.
	if p.t.Paid {
		if err := p.needBudget(); err != nil {
			return p.refuse(ctx, err)
		}
	}
	// Step 6: idempotency for calls that create or pay.
	var idem *idemRun
	if p.t.Creating {
		key, _ := args["idempotency_key"].(string)
		if key == "" {
			key = idempotency.DeriveKey(p.c.Subject, p.t.def.Name, digest)
		}
		out, err := p.cfg.Idem.Begin(ctx, p.c.Subject, p.t.def.Name, key, digest)
		if err != nil {
			return p.refuse(ctx, err)
		}
		if out.State == idempotency.Replay {
			var res mcp.CallToolResult
			if err := json.Unmarshal(out.Result, &res); err != nil {
				return p.refuse(ctx, fault.Wrap(err, fault.Internal, "the stored result of this call cannot be read; nothing was charged again"))
			}
			return &res, nil
		}
		idem = &idemRun{key: key, out: out}
	}
	// A paid call is quoted first: the purchase gate shows the exact price.
	var q *Quote
	if p.t.Paid {
		qq, err := p.t.Quote(ctx, req)
		if err != nil {
			p.abort(ctx, idem)
			return p.refuse(ctx, err)
		}
		q = &qq
	}
	// Step 7: human gates. Asking ends this round; the retry starts over.
	if res, err := p.gate(ctx, req, q); err != nil || res != nil {
		p.abort(ctx, idem)
		if err != nil {
			return p.refuse(ctx, err)
		}
		return res, nil
	}
	// Step 8: hold the quoted amount before any paid provider call.
	var sp *Spend
	if p.t.Paid {
		sp, err = p.hold(ctx, *q, idem)
		if err != nil {
			p.abort(ctx, idem)
			return p.refuse(ctx, err)
		}
		ctx = context.WithValue(ctx, spendKey{}, sp)
	}
	// A call that creates or pays re-checks its session right before the
	// provider: a revoke that landed while it was quoted, asked or held
	// stops it here.
	if p.t.Creating || p.t.Paid || p.t.Ask != nil {
		if err := p.cfg.Sessions.Check(ctx, p.c.Subject, p.c.SessionID, p.c.ID); err != nil {
			if sp != nil {
				p.release(ctx, sp, "session no longer active")
			}
			p.abort(ctx, idem)
			return p.refuse(ctx, err)
		}
	}
	// Step 9: the handler calls the provider in the principal's own
	// account with that account's credential (step 4b), within a deadline shorter than the hold's and the idempotency lock's.
	hctx, cancel := context.WithTimeout(ctx, p.cfg.handlerDeadline())
	res, err := next(hctx, req)
	cancel()
	if err != nil {
		// The handler may have called the provider before it failed.
		res = Refuse(provider.AfterCall(fault.Wrap(err, fault.Internal, "internal error in tollgate; check spend_status before retrying")))
	}
	// Step 10: commit or release, and remember the result. Once the
	// handler has run, the result is kept even when it is a refusal: a
	// retry must not reach the provider a second time (use another
	// idempotency_key to try again on purpose).
	if sp != nil {
		if cerr := p.settle(ctx, sp, res); cerr != nil {
			res = Refuse(provider.AfterCall(cerr))
		}
	}
	p.complete(ctx, idem, res)
	if res.IsError {
		p.noteRefusal(ctx, res)
	}
	return res, nil
}

// handlerDeadline bounds a provider call so it ends before its hold and
// its idempotency lock can expire under it.
func (c PipelineConfig) handlerDeadline() time.Duration {
	if c.HandlerDeadline > 0 {
		return c.HandlerDeadline
	}
	return 5 * time.Minute
}

type idemRun struct {
	key string
	out idempotency.Outcome
}

// refuse answers a refusal before the handler: the tool's provider call was
// not made, even when a quote or a gate's lookup read from the provider.
func (p *pipelineCall) refuse(ctx context.Context, err error) (*mcp.CallToolResult, error) {
	res := Refuse(provider.BeforeCall(err))
	p.noteRefusal(ctx, res)
	return res, nil
}

// noteRefusal feeds the loop guard: the same refused call repeated is the
// loop the agent cannot see.
func (p *pipelineCall) noteRefusal(ctx context.Context, res *mcp.CallToolResult) {
	if !p.t.Metered || p.loop.Principal == "" {
		return
	}
	if err := p.cfg.Loop.Refused(context.WithoutCancel(ctx), p.loop, resultCode(res)); err != nil {
		p.cfg.Log.Warn("loop guard could not record a refusal", "tool", p.t.def.Name, "err", err)
	}
}

func (p *pipelineCall) abort(ctx context.Context, idem *idemRun) {
	if idem == nil {
		return
	}
	if err := p.cfg.Idem.Abort(context.WithoutCancel(ctx), p.c.Subject, p.t.def.Name, idem.key, idem.out.Fence); err != nil {
		p.cfg.Log.Warn("idempotency abort failed", "tool", p.t.def.Name, "err", err)
	}
}

func (p *pipelineCall) complete(ctx context.Context, idem *idemRun, res *mcp.CallToolResult) {
	if idem == nil {
		return
	}
	b, err := json.Marshal(res)
	if err == nil {
		err = p.cfg.Idem.Complete(context.WithoutCancel(ctx), p.c.Subject, p.t.def.Name, idem.key, idem.out.Fence, b)
	}
	if err != nil {
		p.cfg.Log.Error("idempotency complete failed: a retry may run again", "tool", p.t.def.Name, "err", err)
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
