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
