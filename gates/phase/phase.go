// Package phase runs the guard's Redis steps as one fused script per phase
// (internal/fuse), under the principal's hash tag, so that one tool call
// costs at most three round trips and an unpaid one exactly one:
//
//   - Pre, before anything is quoted or asked: the session is live, the
//     loop guard allows the call, its idempotency key is free (or holds a
//     result to replay), the account it acts in is read, and the tool_call
//     entry is appended to the principal's audit chain.
//   - Admit, right before the provider: the session is still live, the
//     idempotency lock is taken, the quoted amount is held against the cap
//     and every task budget, and the hold is audited.
//   - Settle, after the provider: commit or release, remember the result,
//     and audit the outcome.
//
// Each store keeps its own script; a phase only strings their steps
// together. When a step refuses, the phase writes no audit entry and
// answers that step's error: the caller records the refusal.
package phase

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Runner runs the phases on the stores of one Redis.
type Runner struct {
	Redis    redis.Scripter
	Audit    *sessions.Audit
	Sessions *sessions.Store
	Loop     *loopguard.Guard
	Idem     *idempotency.Store
	Ledger   *spend.Ledger
	// Wait, when Replicas > 0, has Admit's hold and Settle's commit
	// confirmed by that many replicas (Redis WAIT, in the same round
	// trip). A hold short of them is released and the call refused
	// (unavailable, nothing charged); a commit short of them is kept (the
	// provider has charged) and reported to Short.
	Wait Wait
}

// Wait is how many replicas must acknowledge a hold or a commit, within
// what time, and what to tell when fewer did.
type Wait struct {
	Replicas int
	Timeout  time.Duration
	// Short, when set, is told of a phase ("admit", "settle") whose
	// write fewer than Replicas replicas acknowledged in time.
	Short func(phase string, acked int)
}

// waiting marks ctx for a waited fused script when the Runner waits.
func (r *Runner) waiting(ctx context.Context) (context.Context, *fuse.Acks) {
	return fuse.WithWait(ctx, fuse.Wait{Replicas: r.Wait.Replicas, Timeout: r.Wait.Timeout})
}

func (r *Runner) short(phase string, acks *fuse.Acks) {
	if r.Wait.Short != nil {
		r.Wait.Short(phase, acks.Got)
	}
}

// Check reports a Runner missing a store.
func (r *Runner) Check() error {
	if r == nil || r.Redis == nil || r.Audit == nil || r.Sessions == nil || r.Loop == nil || r.Idem == nil || r.Ledger == nil {
		return errors.New("phase: the Runner needs Redis, the audit trail, sessions, loop guard, idempotency and the ledger")
	}
	return nil
}

// Call names the caller of every phase.
type Call struct {
	Principal, Session, JTI string
}

// Key is a call's idempotency key.
type Key struct {
	Tool, Key, Digest string
}

// Pre is the first phase of a call.
type Pre struct {
	Call
	// Entry is appended when every step passes.
	Entry sessions.Entry
	// Loop, when set, is checked and counted (metered tools).
	Loop *loopguard.Call
	// Peek, when set, looks at the idempotency record (creating tools).
	Peek *Key
	// Extra steps of the same principal (the account read); their replies
	// are returned in order.
	Extra []fuse.Step
}

// PreResult is what Pre found.
type PreResult struct {
	// Replay holds a completed call's stored result; the entry was not
	// appended and no Extra step ran.
	Replay []byte
	Extra  []any
	Entry  sessions.Entry
}

// Pre runs the first phase. A refusal (session, loop guard, idempotency)
// is returned as that step's error, with nothing appended.
func (r *Runner) Pre(ctx context.Context, p Pre) (PreResult, error) {
	check, err := r.Sessions.CheckStep(p.Principal, p.Session, p.JTI)
	if err != nil {
		return PreResult{}, err
	}
	steps := []fuse.Step{check}
	var loopReply func(any) error
	if p.Loop != nil {
		s, parse, err := r.Loop.AllowStep(*p.Loop)
		if err != nil {
			return PreResult{}, err
		}
		steps, loopReply = append(steps, s), parse
	}
	var peekReply func(any) (idempotency.Outcome, error)
	if p.Peek != nil {
		s, parse, err := r.Idem.PeekStep(p.Principal, p.Peek.Tool, p.Peek.Key, p.Peek.Digest)
		if err != nil {
			return PreResult{}, err
		}
		steps, peekReply = append(steps, s), parse
	}
	extra := len(steps)
	steps = append(steps, p.Extra...)
	f, err := r.Audit.Fused(ctx, p.Entry, r.Redis, steps...)
	if err != nil {
		return PreResult{}, err
	}
	if f.Replayed {
		return PreResult{}, fault.New(fault.Unavailable, "the connection to Redis dropped while this call was admitted; it was recorded but not run. Retry it; nothing was charged.")
	}
	out := PreResult{Entry: f.Entry}
	i := 0
	if err := sessions.CheckReply(f.Steps.Replies[i]); err != nil {
		return out, err
	}
	if loopReply != nil {
		i++
		if err := loopReply(f.Steps.Replies[i]); err != nil {
			return out, err
		}
	}
	if peekReply != nil {
		i++
		o, err := peekReply(f.Steps.Replies[i])
		if err != nil {
			return out, err
		}
		if o.State == idempotency.Replay {
			out.Replay = o.Result
			return out, nil
		}
	}
	if f.Steps.Stopped >= 0 {
		return out, fault.Newf(fault.Internal, "step %d stopped the guard's first phase without a reason; nothing was charged", f.Steps.Stopped)
	}
	out.Extra = f.Steps.Replies[extra:]
	return out, nil
}

// Admit is the phase right before the provider call.
type Admit struct {
	Call
	// Entry is the hold's audit entry, appended when the hold is placed;
	// without Hold it is not used.
	Entry sessions.Entry
	// Begin takes the idempotency lock (creating tools).
	Begin *Key
	// Hold, when set, is held with the idempotency fence as its id.
	Hold *spend.HoldRequest
}

// AdmitResult is what Admit took.
type AdmitResult struct {
	Idem  idempotency.Outcome
	Hold  spend.Hold
	Entry sessions.Entry
}

// Admit runs the second phase. A refusal leaves the idempotency lock taken
// when only the hold refused: the caller aborts it.
func (r *Runner) Admit(ctx context.Context, a Admit) (AdmitResult, error) {
	check, err := r.Sessions.CheckStep(a.Principal, a.Session, a.JTI)
	if err != nil {
		return AdmitResult{}, err
	}
	steps := []fuse.Step{check}
	var out AdmitResult
	var beginReply func(any) (idempotency.Outcome, error)
	if a.Begin != nil {
		s, started, parse, err := r.Idem.BeginStep(a.Principal, a.Begin.Tool, a.Begin.Key, a.Begin.Digest)
		if err != nil {
			return AdmitResult{}, err
		}
		steps, beginReply, out.Idem = append(steps, s), parse, started
	}
	var holdReply func(any) (spend.Hold, error)
	if a.Hold != nil {
		req := *a.Hold
		req.HoldID = out.Idem.Fence
		s, parse, err := r.Ledger.HoldStep(ctx, req)
		if err != nil {
			return AdmitResult{}, err
		}
		steps, holdReply = append(steps, s), parse
		if a.Entry.Detail == nil {
			a.Entry.Detail = map[string]string{}
		}
		a.Entry.Detail["hold"] = req.HoldID
	}
	var res fuse.Result
	var holdAcks *fuse.Acks
	if a.Hold != nil {
		wctx, acks := r.waiting(ctx)
		f, err := r.Audit.Fused(wctx, a.Entry, r.Redis, steps...)
		if err != nil {
			return AdmitResult{}, err
		}
		if f.Replayed {
			// Every step ran once; only the replies were lost. The hold
			// is the one asked for.
			amt := a.Hold.Amount
			out.Hold = spend.Hold{ID: out.Idem.Fence, Principal: a.Principal, Provider: a.Hold.Provider, Amount: amt, State: spend.StateHeld}
			out.Entry = f.Entry
			return r.confirmHold(ctx, a.Principal, out, acks)
		}
		holdAcks = acks
		res, out.Entry = f.Steps, f.Entry
	} else {
		res, err = fuse.Run(ctx, r.Redis, steps...)
		if err != nil {
			return AdmitResult{}, fault.Wrap(err, fault.Unavailable, "the guard's store is unavailable, so the call was not run; nothing was charged. Retry shortly")
		}
	}
	if err := sessions.CheckReply(res.Replies[0]); err != nil {
		return out, err
	}
	i := 0
	if beginReply != nil {
		i++
		o, err := beginReply(res.Replies[i])
		if err != nil {
			out.Idem = idempotency.Outcome{}
			return out, err
		}
		out.Idem = o
	}
	if holdReply != nil {
		i++
		h, err := holdReply(res.Replies[i])
		if err != nil {
			return out, err
		}
		out.Hold = h
		return r.confirmHold(ctx, a.Principal, out, holdAcks)
	}
	return out, nil
}

// confirmHold refuses a hold that fewer replicas than the Runner waits for
// acknowledged: a failover now could promote a replica without it, and
// free money a provider would then charge a second time. The hold is
// released (best effort: else it expires with --hold-ttl) and the call
// refused before the provider; the idempotency lock is left for the
// caller to abort, as for any refused hold.
func (r *Runner) confirmHold(ctx context.Context, principal string, out AdmitResult, acks *fuse.Acks) (AdmitResult, error) {
	if !acks.Short() {
		return out, nil
	}
	r.short("admit", acks)
	if st, _, err := r.Ledger.ReleaseStep(principal, out.Hold.ID, "replicas"); err == nil {
		_, _ = fuse.Run(ctx, r.Redis, st)
	}
	hold := out.Hold
	out.Hold = spend.Hold{}
	return out, fault.New(fault.Unavailable, fmt.Sprintf(
		"Redis could not confirm the hold of %s on %d replica(s) within %s, so the call was not run; nothing was charged. Retry shortly",
		hold.Amount, acks.Asked, r.Wait.Timeout))
}

// Settle is the phase after the provider call.
type Settle struct {
	Call
	// Entry records the outcome; it is appended when the commit (if any)
	// is recorded.
	Entry sessions.Entry
	// Commit records what the provider charged for HoldID.
	Commit *Commit
	// Release frees HoldID's amount.
	Release *Release
	// Complete stores the call's result under its idempotency key.
	Complete *Complete
}

// Commit names a hold and what the provider charged.
type Commit struct {
	HoldID string
	Actual money.Money
	// Bind, for a subscription, binds it to the hold (its recurring
	// commitment) in the same script as the commit: never apart.
	Bind *Bind
	// With are further steps of the principal's that belong with the
	// commit (a registered domain's zone). They run last in the script,
	// only when the commit was recorded, and their replies are not read.
	With []fuse.Step
	// Note, for a one-off charge the provider lists by its own id, lists
	// the committed hold under that id for reconcile, in the same script
	// as the commit (after it, so never for money not recorded).
	Note *Note
}

// Note is a one-off charge's key at the provider and a reference (a
// request id) kept with it.
type Note struct {
	Key, Ref string
}

// Bind is a provider subscription to bind to the committed hold, and its
// first invoice.
type Bind struct {
	Subscription spend.Subscription
	Invoice      string
}

// Release names a hold to free and why.
type Release struct {
	HoldID, Reason string
}

// Complete is the result to keep for replays.
type Complete struct {
	Key    Key
	Fence  string
	Result []byte
}

// SettleResult reports the parts of Settle that failed without stopping
// it: the release and the stored result (the commit's failure is Settle's
// error).
type SettleResult struct {
	Entry                 sessions.Entry
	ReleaseErr, IdemError error
	// With holds the replies of the commit's With steps, in order, when
	// they ran (nil when the commit was not recorded).
	With []any
	// NoteErr: the commit was recorded but its charge was not noted for
	// reconcile.
	NoteErr error
}

// Settle runs the last phase. When the commit cannot be recorded it
// returns the commit's error and appends nothing: the caller records that.
func (r *Runner) Settle(ctx context.Context, s Settle) (SettleResult, error) {
	var steps []fuse.Step
	var commitReply, bindReply, noteReply, releaseReply, completeReply func(any) error
	var out SettleResult
	if s.Commit != nil {
		st, parse, err := r.Ledger.CommitStep(s.Principal, s.Commit.HoldID, s.Commit.Actual)
		if err != nil {
			return out, err
		}
		steps, commitReply = append(steps, st), parse
		if b := s.Commit.Bind; b != nil {
			bst, bparse, err := r.Ledger.BindStep(s.Principal, s.Commit.HoldID, b.Subscription, b.Invoice)
			if err != nil {
				return out, err
			}
			steps, bindReply = append(steps, bst), bparse
		}
		if n := s.Commit.Note; n != nil {
			nst, nparse, err := r.Ledger.NoteStep(s.Principal, s.Commit.HoldID, n.Key, n.Ref)
			if err != nil {
				out.NoteErr = err
			} else {
				steps, noteReply = append(steps, nst), nparse
			}
		}
	}
	if s.Release != nil {
		st, parse, err := r.Ledger.ReleaseStep(s.Principal, s.Release.HoldID, s.Release.Reason)
		if err != nil {
			out.ReleaseErr = err
		} else {
			steps, releaseReply = append(steps, st), parse
		}
	}
	if s.Complete != nil {
		st, parse, err := r.Idem.CompleteStep(s.Principal, s.Complete.Key.Tool, s.Complete.Key.Key, s.Complete.Fence, s.Complete.Result)
		if err != nil {
			out.IdemError = err
		} else {
			steps, completeReply = append(steps, st), parse
		}
	}
	withAt := len(steps)
	wctx, acks := ctx, (*fuse.Acks)(nil)
	if s.Commit != nil {
		steps = append(steps, s.Commit.With...)
		// The provider has charged: a commit fewer replicas acknowledged
		// is kept, and reported.
		wctx, acks = r.waiting(ctx)
	}
	f, err := r.Audit.Fused(wctx, s.Entry, r.Redis, steps...)
	if err != nil {
		return out, err
	}
	out.Entry = f.Entry
	if f.Replayed {
		if acks.Short() {
			r.short("settle", acks)
		}
		return out, nil
	}
	i := 0
	next := func(parse func(any) error) error {
		if parse == nil {
			return nil
		}
		if i >= len(f.Steps.Replies) {
			return nil // an earlier step stopped the script
		}
		err := parse(f.Steps.Replies[i])
		i++
		return err
	}
	if err := next(commitReply); err != nil {
		return out, err
	}
	if acks.Short() {
		// Only a commit recorded (not one refused) is reported.
		r.short("settle", acks)
	}
	if err := next(bindReply); err != nil {
		return out, err
	}
	if err := next(noteReply); err != nil {
		out.NoteErr = err
	}
	if err := next(releaseReply); err != nil {
		out.ReleaseErr = err
	}
	if err := next(completeReply); err != nil {
		out.IdemError = err
	}
	if len(f.Steps.Replies) > withAt {
		out.With = f.Steps.Replies[withAt:]
	}
	return out, nil
}
