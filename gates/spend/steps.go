package spend

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// The ledger's steps for fused scripts (internal/fuse): the same scripts,
// keys and arguments as Hold, Commit and Release, run inside one script
// with other stores' steps of the same principal. Each builder checks its
// input as the method does and returns the step and the function that
// reads the step's reply.

// HoldStep is Hold as a fused step. The script goes on only when the hold
// is placed (or is this hold again). The principals index is refreshed
// apart from the script (it is a global key), at most once a minute per
// principal and process.
func (l *Ledger) HoldStep(ctx context.Context, req HoldRequest) (fuse.Step, func(reply any) (Hold, error), error) {
	now := l.cfg.Now()
	if req.HoldID == "" {
		req.HoldID = l.cfg.NewID()
	}
	if err := l.validateHold(&req); err != nil {
		return fuse.Step{}, nil, err
	}
	cp, err := l.capFor(req.Principal, req.Provider)
	if err != nil {
		return fuse.Step{}, nil, err
	}
	if req.Amount.Currency != cp.Currency {
		return fuse.Step{}, nil, invalidAmount("the amount %s is not in %s, the currency of the %s cap; nothing was charged. Quote the price in %s.",
			req.Amount, strings.ToUpper(cp.Currency), req.Provider, strings.ToUpper(cp.Currency))
	}
	if err := l.touchIndex(ctx, req.Principal, now); err != nil {
		return fuse.Step{}, nil, err
	}
	mon := month(now)
	keys, args := l.holdCall(req, cp, mon, now)
	step := fuse.Step{Name: "spend_hold", Lib: libLua, Body: holdLua, Continue: "r[1] == " + strconv.Itoa(rHeld),
		Keys: keys, Args: args}
	return step, func(reply any) (Hold, error) { return l.holdReply(reply, req, cp, mon) }, nil
}

// CommitStep is Commit as a fused step; the script goes on only when the
// amount is recorded.
func (l *Ledger) CommitStep(principal, holdID string, actual money.Money) (fuse.Step, func(reply any) error, error) {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return fuse.Step{}, nil, errHoldNotFound(holdID)
	}
	if err := checkAmount(&actual, true, "the actual charge"); err != nil {
		return fuse.Step{}, nil, err
	}
	step := fuse.Step{Name: "spend_commit", Lib: libLua, Body: commitLua, Continue: "r[1] == " + strconv.Itoa(rOK),
		Keys: l.settleKeys(principal, holdID),
		Args: []any{l.keys.base(principal), ms(l.cfg.Now()), holdID, reapLimit, l.cfg.Retention.Milliseconds(),
			strconv.FormatInt(actual.Minor, 10), actual.Currency}}
	return step, func(reply any) error { return l.commitReply(reply, holdID, actual) }, nil
}

// ReleaseStep is Release as a fused step; the script always goes on (an
// unreleased hold expires on its own, and what happened is still worth
// recording).
func (l *Ledger) ReleaseStep(principal, holdID, reason string) (fuse.Step, func(reply any) error, error) {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return fuse.Step{}, nil, errHoldNotFound(holdID)
	}
	if !optionalText(reason, maxReason) {
		return fuse.Step{}, nil, invalid("the release reason must be printable text of at most %d bytes; the hold was not released.", maxReason)
	}
	step := fuse.Step{Name: "spend_release", Lib: libLua, Body: releaseLua, Continue: "true",
		Keys: l.settleKeys(principal, holdID),
		Args: []any{l.keys.base(principal), ms(l.cfg.Now()), holdID, reapLimit, l.cfg.Retention.Milliseconds(), reason}}
	return step, func(reply any) error { return l.releaseReply(reply, holdID) }, nil
}

// indexEvery is how often a process refreshes a principal's entry in the
// principals index on the fused path.
const indexEvery = time.Minute

// touchIndex refreshes principal in the principals index, unless this
// process did within indexEvery.
func (l *Ledger) touchIndex(ctx context.Context, principal string, now time.Time) error {
	if l.indexedRecently(principal, now) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	if err := l.rdb.ZAddGT(ctx, l.keys.principals(), redis.Z{Score: float64(ms(now)), Member: principal}).Err(); err != nil {
		return unavailable("hold", err, msgHoldDown)
	}
	l.noteIndexed(principal, now)
	return nil
}

// indexedRecently: this process put principal in the principals index
// within indexEvery (the index lists who has a ledger; its scores are
// only when each was last seen).
func (l *Ledger) indexedRecently(principal string, now time.Time) bool {
	l.mu.Lock()
	t, ok := l.touched[principal]
	l.mu.Unlock()
	return ok && now.Sub(t) < indexEvery && !now.Before(t)
}

func (l *Ledger) noteIndexed(principal string, now time.Time) {
	l.mu.Lock()
	if l.touched == nil || len(l.touched) >= 1<<16 {
		l.touched = make(map[string]time.Time)
	}
	l.touched[principal] = now
	l.mu.Unlock()
}

// BindStep records, in the same fused script as the commit of hold
// holdID (placed after CommitStep, it runs only when the commit was
// recorded), that provider subscription s.ID is that hold's recurring
// commitment: the binding (who holds it, who started it), the first
// invoice listed as the month's charge for reconcile, and the
// subscription id as the commitment's ref. Webhooks find renewals and
// cancellations through it, so it is never written apart from the money.
func (l *Ledger) BindStep(principal, holdID string, s Subscription, invoice string) (fuse.Step, func(reply any) error, error) {
	s.Principal, s.Commitment = principal, holdID
	if !validPrincipal(principal) || !validHoldID(holdID) || !KnownProvider(s.Provider) || s.ID == "" || len(s.ID) > maxID ||
		strings.ContainsAny(s.ID, "|") || len(invoice) > 256 {
		return fuse.Step{}, nil, invalid("the subscription binding is malformed; nothing was recorded.")
	}
	if invoice == "" {
		invoice = s.ID
	}
	b, err := jsonMarshal(s)
	if err != nil {
		return fuse.Step{}, nil, internal("bind", "%v", err)
	}
	step := fuse.Step{Name: "spend_bind", Body: bindLua, Continue: "r[1] == " + strconv.Itoa(rBound),
		Keys: []string{l.keys.hold(principal, holdID), l.keys.subs(principal)},
		Args: []any{l.keys.base(principal), s.ID, b, invoice, l.cfg.Retention.Milliseconds(), holdID}}
	return step, func(reply any) error {
		r, err := parseReply(reply)
		if err != nil {
			return internal("bind", "%v", err)
		}
		if r.code != rBound {
			return internal("bind", "hold %q is not committed (reply %d); the subscription was not bound", holdID, r.code)
		}
		return nil
	}, nil
}

// RenewStep is Renew as a fused step: the script goes on (and an audit
// entry fused after it is written) only when the renewal is new; a
// replayed invoice stops it.
func (l *Ledger) RenewStep(r Renewal) (fuse.Step, func(reply any) (replay, known bool, err error), error) {
	if !validPrincipal(r.Principal) || !KnownProvider(r.Provider) || r.Invoice == "" || len(r.Invoice) > 256 {
		return fuse.Step{}, nil, invalid("the renewal is malformed.")
	}
	if _, err := ParseMonth(r.Month); err != nil {
		return fuse.Step{}, nil, err
	}
	if err := checkAmount(&r.Amount, true, "the renewal"); err != nil {
		return fuse.Step{}, nil, err
	}
	if d := l.DefaultCapFor(r.Provider); r.Amount.Currency != d.Currency {
		return fuse.Step{}, nil, invalidAmount("the renewal %s is not in %s, the currency of the %s ledger.", r.Amount, strings.ToUpper(d.Currency), r.Provider)
	}
	if r.EveryMonths < 1 {
		r.EveryMonths = 1
	}
	step := fuse.Step{Name: "spend_renew", Lib: libLua, Body: renewLua,
		Continue: "r[1] == " + strconv.Itoa(rRenewed) + " or r[1] == " + strconv.Itoa(rRenewUnknown),
		Keys:     []string{l.keys.cap(r.Principal, r.Provider, r.Month), l.keys.recurring(r.Principal, r.Provider), l.keys.charges(r.Principal, r.Provider, r.Month)},
		Args: []any{r.Commitment, r.Invoice, strconv.FormatInt(r.Amount.Minor, 10), r.Amount.Currency, addMonths(r.Month, r.EveryMonths),
			l.cfg.Retention.Milliseconds(), r.Ref}}
	return step, func(reply any) (bool, bool, error) {
		rep, err := parseReply(reply)
		if err != nil {
			return false, false, internal("renew", "%v", err)
		}
		switch rep.code {
		case rRenewed:
			return false, true, nil
		case rRenewReplay:
			return true, true, nil
		case rRenewUnknown:
			return false, false, nil
		}
		return false, false, internal("renew", "script replied %d", rep.code)
	}, nil
}

// NoteStep lists, in the same fused script as the commit of hold holdID
// (placed after CommitStep, it runs only when the commit was recorded),
// that hold as one charge of its month under key, for reconcile
// (Charges): a one-off charge with the provider's own id for it, such as
// a Cloudflare registration's "<account>/<domain>". The provider, the
// month and the amount are the committed hold's, read by the script. The
// first note of key wins, so a retried script changes nothing. The script
// always goes on: the money is recorded whether or not the note is.
func (l *Ledger) NoteStep(principal, holdID, key, ref string) (fuse.Step, func(reply any) error, error) {
	if !validPrincipal(principal) || !validHoldID(holdID) || !printable(key, 256) || !optionalText(ref, 256) {
		return fuse.Step{}, nil, invalid("the charge note is malformed; nothing was noted.")
	}
	step := fuse.Step{Name: "spend_note", Body: noteLua, Continue: "true",
		Keys: []string{l.keys.hold(principal, holdID)},
		Args: []any{l.keys.base(principal), key, ref, l.cfg.Retention.Milliseconds()}}
	return step, func(reply any) error {
		r, err := parseReply(reply)
		if err != nil {
			return internal("note", "%v", err)
		}
		if r.code != rNoted {
			return internal("note", "hold %q is not committed (reply %d); the charge %q was not noted", holdID, r.code, key)
		}
		return nil
	}, nil
}
