package tools

import (
	"context"

	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// fakePhases runs the guard's three phases on the recording fakes, one
// step after another and in the order the fused scripts run them, so the
// step log reads as it does with Redis: the audit entry of a phase is
// appended only when every step before it passed.
type fakePhases struct {
	sessions, recheck *fakeSessions
	loop              *fakeLoop
	idem              *fakeIdem
	ledger            *fakeLedger
	trail             *fakeTrail
}

func (f *fakePhases) Pre(ctx context.Context, p phase.Pre) (phase.PreResult, error) {
	if err := f.sessions.Check(ctx, p.Principal, p.Session, p.JTI); err != nil {
		return phase.PreResult{}, err
	}
	if p.Loop != nil {
		if err := f.loop.Allow(ctx, *p.Loop); err != nil {
			return phase.PreResult{}, err
		}
	}
	if p.Peek != nil {
		o, err := f.idem.Peek(p.Principal, p.Peek.Tool, p.Peek.Key)
		if err != nil {
			return phase.PreResult{}, err
		}
		if o.State == idempotency.Replay {
			return phase.PreResult{Replay: o.Result}, nil
		}
	}
	var out phase.PreResult
	for _, s := range p.Extra {
		out.Extra = append(out.Extra, s.Args[0]) // fakeTenancy's step carries its zone
	}
	e, err := f.trail.Append(ctx, p.Entry)
	out.Entry = e
	return out, err
}

func (f *fakePhases) Admit(ctx context.Context, a phase.Admit) (phase.AdmitResult, error) {
	var out phase.AdmitResult
	if err := f.recheck.Check(ctx, a.Principal, a.Session, a.JTI); err != nil {
		return out, err
	}
	if a.Begin != nil {
		o, err := f.idem.Begin(ctx, a.Principal, a.Begin.Tool, a.Begin.Key, a.Begin.Digest)
		if err != nil {
			return out, err
		}
		out.Idem = o
		if o.State == idempotency.Replay {
			return out, nil
		}
	}
	if a.Hold != nil {
		req := *a.Hold
		req.HoldID = out.Idem.Fence
		h, err := f.ledger.Hold(ctx, req)
		if err != nil {
			return out, err
		}
		out.Hold = h
		if a.Entry.Detail == nil {
			a.Entry.Detail = map[string]string{}
		}
		a.Entry.Detail["hold"] = h.ID
		e, err := f.trail.Append(ctx, a.Entry)
		out.Entry = e
		return out, err
	}
	return out, nil
}

func (f *fakePhases) Settle(ctx context.Context, s phase.Settle) (phase.SettleResult, error) {
	var out phase.SettleResult
	if s.Commit != nil {
		if err := f.ledger.Commit(ctx, s.Principal, s.Commit.HoldID, s.Commit.Actual); err != nil {
			return out, err
		}
	}
	if s.Release != nil {
		out.ReleaseErr = f.ledger.Release(ctx, s.Principal, s.Release.HoldID, s.Release.Reason)
	}
	if s.Complete != nil {
		out.IdemError = f.idem.Complete(ctx, s.Principal, s.Complete.Key.Tool, s.Complete.Key.Key, s.Complete.Fence, s.Complete.Result)
	}
	if s.Commit != nil {
		for _, w := range s.Commit.With {
			f.ledger.log.add(w.Name)
		}
	}
	e, err := f.trail.Append(ctx, s.Entry)
	out.Entry = e
	return out, err
}

// Peek is the first phase's look at the idempotency record: a stored
// result to replay, or free.
func (f *fakeIdem) Peek(principal, tool, key string) (idempotency.Outcome, error) {
	f.log.add("idem.peek")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return idempotency.Outcome{}, f.err
	}
	if f.replay != nil {
		return idempotency.Outcome{State: idempotency.Replay, Result: f.replay, Key: principal + "|" + tool + "|" + key}, nil
	}
	return idempotency.Outcome{State: idempotency.Started}, nil
}

// Read is fakeTenancy's step in the first phase: the step carries the
// zone, and resolving it logs "tenant".
func (f *fakeTenancy) Read(principal string, zone domainname.Name) (fuse.Step, func(context.Context, any) (Tenant, error)) {
	return fuse.Step{Name: "fake_tenant", Args: []any{string(zone)}}, func(ctx context.Context, reply any) (Tenant, error) {
		z, _ := reply.(string)
		return f.Resolve(ctx, principal, domainname.Name(z))
	}
}

var _ Phases = (*fakePhases)(nil)
