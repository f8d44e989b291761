package spend

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Commit records that the provider charged actual for the hold: actual
// (at most the held amount, zero allowed) moves from held to spent in the
// hold's own month and task budgets, and the rest of the hold is freed. One
// round trip once the script is cached.
//
// It is idempotent: committing again with the same actual is nil, with
// another it is HoldConflict. A hold whose TTL has passed is HoldExpired
// (its amount was freed: record the charge with Reconcile), a released one
// HoldConflict, more than held or another currency InvalidAmount, an
// unknown id HoldNotFound. When Redis errs the charge may not be recorded
// (fault.Unavailable): retry.
func (l *Ledger) Commit(ctx context.Context, principal, holdID string, actual money.Money) error {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return errHoldNotFound(holdID)
	}
	if err := checkAmount(&actual, true, "the actual charge"); err != nil {
		return err
	}
	now := l.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.commit.Run(ctx, l.rdb, l.settleKeys(principal, holdID),
		l.keys.base(principal), ms(now), holdID, reapLimit, l.cfg.Retention.Milliseconds(),
		strconv.FormatInt(actual.Minor, 10), actual.Currency).Result()
	if err != nil {
		return unavailable("commit", err, msgCommitDown)
	}
	return l.commitReply(res, holdID, actual)
}

// commitReply reads commitLua's reply.
func (l *Ledger) commitReply(res any, holdID string, actual money.Money) error {
	return l.settled("commit", res, holdID, func(code int64, h Hold) error {
		switch code {
		case rCommitted:
			return fault.Newf(HoldConflict,
				"hold %q was already committed with %s; this commit of %s recorded nothing. Commit the amount the provider charged once.",
				holdID, h.Actual, actual)
		case rReleased:
			return fault.Newf(HoldConflict,
				"hold %q was released, so this charge of %s was not recorded. If the provider did charge, tell the operator.",
				holdID, actual)
		case rTooMuch:
			return invalidAmount("the actual charge %s is more than the %s held by %q; the ledger recorded nothing and the hold is unchanged. "+
				"Commit at most the held amount and report the difference to the operator.", actual, h.Amount, holdID)
		case rHoldCurrency:
			return invalidAmount("the actual charge %s is not in %s, the currency of hold %q; the ledger recorded nothing and the hold is unchanged.",
				actual, strings.ToUpper(h.Amount.Currency), holdID)
		}
		return nil
	})
}

// Release frees the hold's amount: the provider was not called, or did not
// charge. It is idempotent. Releasing an expired hold reconciles it
// (nothing was charged; its amount was already freed) and takes it off the
// stale list. A committed hold cannot be released (HoldConflict); an
// unknown id is HoldNotFound. reason is recorded (at most 512 bytes).
func (l *Ledger) Release(ctx context.Context, principal, holdID, reason string) error {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return errHoldNotFound(holdID)
	}
	if !optionalText(reason, maxReason) {
		return invalid("the release reason must be printable text of at most %d bytes; the hold was not released.", maxReason)
	}
	now := l.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.release.Run(ctx, l.rdb, l.settleKeys(principal, holdID),
		l.keys.base(principal), ms(now), holdID, reapLimit, l.cfg.Retention.Milliseconds(), reason).Result()
	if err != nil {
		return unavailable("release", err, msgReleaseDown)
	}
	return l.releaseReply(res, holdID)
}

// releaseReply reads releaseLua's reply.
func (l *Ledger) releaseReply(res any, holdID string) error {
	return l.settled("release", res, holdID, func(code int64, h Hold) error {
		if code == rCommitted {
			return fault.Newf(HoldConflict,
				"hold %q was already committed (%s charged), so it cannot be released; nothing was changed. A refund goes through the provider.",
				holdID, h.Actual)
		}
		return nil
	})
}

// Reconcile records what the provider really charged for an expired hold
// (found with Holds and Stale): actual, at most the held amount, is added
// to spent in the hold's month and budgets, and the hold becomes committed.
// This records money already gone, so it may take spent past the cap. Use
// Release instead when nothing was charged. It is idempotent with the same
// actual. An open hold is HoldConflict (commit or release it), as is a
// released one.
func (l *Ledger) Reconcile(ctx context.Context, principal, holdID string, actual money.Money, note string) error {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return errHoldNotFound(holdID)
	}
	if err := checkAmount(&actual, true, "the actual charge"); err != nil {
		return err
	}
	if !optionalText(note, maxReason) {
		return invalid("the reconciliation note must be printable text of at most %d bytes; nothing was recorded.", maxReason)
	}
	now := l.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.reconcile.Run(ctx, l.rdb, l.settleKeys(principal, holdID),
		l.keys.base(principal), ms(now), holdID, reapLimit, l.cfg.Retention.Milliseconds(),
		strconv.FormatInt(actual.Minor, 10), actual.Currency, note).Result()
	if err != nil {
		return unavailable("reconcile", err, msgCommitDown)
	}
	return l.settled("reconcile", res, holdID, func(code int64, h Hold) error {
		switch code {
		case rStillHeld:
			return fault.Newf(HoldConflict,
				"hold %q is still open until %s; commit or release it instead. Nothing was recorded.",
				holdID, h.Expires.Format("2006-01-02T15:04:05.000Z07:00"))
		case rReleased:
			return fault.Newf(HoldConflict, "hold %q was released as not charged; nothing was recorded. Tell the operator.", holdID)
		case rCommitted:
			return fault.Newf(HoldConflict, "hold %q was already recorded with %s; %s was not recorded.", holdID, h.Actual, actual)
		case rTooMuch:
			return invalidAmount("%s is more than the %s held by %q; nothing was recorded.", actual, h.Amount, holdID)
		case rHoldCurrency:
			return invalidAmount("%s is not in %s, the currency of hold %q; nothing was recorded.",
				actual, strings.ToUpper(h.Amount.Currency), holdID)
		}
		return nil
	})
}

// Get returns the hold holdID of principal, as stored (an open hold past
// its TTL still reads StateHeld until the next ledger call expires it; see
// Hold.Stale).
func (l *Ledger) Get(ctx context.Context, principal, holdID string) (Hold, error) {
	if !validPrincipal(principal) || !validHoldID(holdID) {
		return Hold{}, errHoldNotFound(holdID)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	m, err := l.rdb.HGetAll(ctx, l.keys.hold(principal, holdID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Hold{}, unavailable("get", err, msgReadDown)
	}
	if len(m) == 0 {
		return Hold{}, errHoldNotFound(holdID)
	}
	h, err := decodeHold(m)
	if err != nil {
		return Hold{}, internal("get", "%v", err)
	}
	return h, nil
}

func (l *Ledger) settleKeys(principal, holdID string) []string {
	return []string{l.keys.hold(principal, holdID), l.keys.open(principal), l.keys.stale(principal)}
}

// settled maps a commit, release or reconcile reply to an error: nil for
// rOK, the shared refusals here, the operation's own through refuse.
func (l *Ledger) settled(op string, res any, holdID string, refuse func(code int64, h Hold) error) error {
	r, err := parseReply(res)
	if err != nil {
		return internal(op, "%v", err)
	}
	if r.code == rNotFound {
		return errHoldNotFound(holdID)
	}
	h, err := r.record(1)
	if err != nil {
		return internal(op, "code %d: %v", r.code, err)
	}
	switch r.code {
	case rOK:
		return nil
	case rExpired:
		return errHoldExpired(h, l.cfg.HoldTTL)
	case rCommitted, rReleased, rTooMuch, rHoldCurrency, rStillHeld:
		if err := refuse(r.code, h); err != nil {
			return err
		}
	}
	return internal(op, "script replied %d", r.code)
}
