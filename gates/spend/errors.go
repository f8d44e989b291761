package spend

import (
	"fmt"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Decision codes of the ledger. A code is a contract with clients and never
// changes meaning. Redis failures are fault.Unavailable, malformed
// identifiers fault.InvalidArgument.
const (
	// CapExceeded: the hold would take the month's spent + held past the
	// principal's cap for the provider.
	CapExceeded fault.Code = "cap_exceeded"
	// BudgetExceeded: the hold would take a task budget along the session
	// chain past its maximum.
	BudgetExceeded fault.Code = "budget_exceeded"
	// HoldConflict: the hold id is taken by a different hold, or the hold
	// is already settled in a way the request contradicts.
	HoldConflict fault.Code = "hold_conflict"
	// HoldNotFound: no hold with this id for this principal.
	HoldNotFound fault.Code = "hold_not_found"
	// HoldExpired: the hold outlived its TTL and its amount was freed.
	HoldExpired fault.Code = "hold_expired"
	// InvalidAmount: zero, negative, too large, or in the wrong currency.
	InvalidAmount fault.Code = "invalid_amount"
)

// Reply codes of the Lua scripts (the first element of every reply). Zero
// is never "ok", so a nil or defaulted reply cannot pass.
const (
	rHeld             = 1  // a new hold; record follows
	rReplay           = 2  // the hold existed; record follows
	rCap              = 3  // cap exceeded; spent, held follow
	rBudget           = 4  // budget exceeded; index (1-based), spent, held follow
	rConflict         = 5  // hold id taken by another hold
	rCapCurrency      = 6  // month's counters are in another currency; it follows
	rBudgetCurr       = 7  // a budget's counters are in another currency; index, currency follow
	rNotFound         = 8  // no such hold
	rOK               = 9  // settled; record follows
	rExpired          = 10 // the hold expired; record follows
	rReleased         = 11 // the hold was released; record follows
	rCommitted        = 12 // the hold was committed with another amount; record follows
	rTooMuch          = 13 // actual above the hold; record follows
	rHoldCurrency     = 14 // actual in another currency than the hold; record follows
	rStillHeld        = 15 // reconcile of a hold that is still open; record follows
	rReadCounters     = 16 // counters follow: spent, held, currency
	rReaped           = 17 // number of holds expired follows
	rListed           = 18 // records follow
	rUnknownRecord    = 19 // the record has a state the package does not know
	rRecurring        = 20 // recurring commitments would exceed the standing cap; total, cap follow
	rCapSet           = 21 // cap stored; the previous value follows ('' if none)
	rCapNotRaised     = 22 // a raise at or below the stored cap; the stored value follows
	rRenewed          = 23 // renewal recorded
	rRenewReplay      = 24 // this invoice was recorded before
	rRenewUnknown     = 25 // recorded, but no such commitment is kept
	rEnded            = 26 // commitment ended; 1 if it existed follows
	rBound            = 27 // subscription bound to its committed first period
	rBindNotCommitted = 28 // the hold is not committed: nothing bound
	rNoted            = 29 // charge noted for reconcile; 1 if new, 0 if noted before follows
	rNoteNotCommitted = 30 // the hold is not committed: nothing noted
)

func invalid(format string, args ...any) error {
	return fault.Newf(fault.InvalidArgument, format, args...)
}

func invalidAmount(format string, args ...any) error {
	return fault.Newf(InvalidAmount, format, args...)
}

// unavailable wraps a Redis failure. public says what the caller should
// know about the state left behind.
func unavailable(op string, err error, public string) error {
	return fault.Wrap(fmt.Errorf("spend: %s: %w", op, err), fault.Unavailable, public)
}

// Public messages for a failed Redis operation, by what it leaves behind.
const (
	msgHoldDown   = "the spend ledger could not be reached, so the purchase was refused before the provider was called; nothing was charged. Retry shortly."
	msgCommitDown = "the spend ledger could not be reached to record this charge. Retry the commit with the same amount: it is idempotent. " +
		"If it keeps failing, the hold expires and is listed by `tollgate spend holds --stale` for reconciliation."
	msgReleaseDown = "the spend ledger could not be reached, so the hold was not released; nothing was charged. Retry: releasing is idempotent, " +
		"and the hold expires on its own otherwise."
	msgReadDown = "the spend ledger could not be reached; nothing was charged or changed. Retry shortly."
)

// internal reports a reply or configuration the package does not
// understand; it refuses.
func internal(op string, format string, args ...any) error {
	return fault.Wrap(fmt.Errorf("spend: %s: "+format, append([]any{op}, args...)...), fault.Internal,
		"the spend ledger returned an unexpected answer, so the call was refused; nothing was charged. Contact the operator.")
}

func errHoldNotFound(id string) error {
	return fault.Newf(HoldNotFound,
		"there is no hold %q for this principal; nothing was charged or changed. Check the hold id.", id)
}

func errCapExceeded(provider, month string, spent, held, due, recurring, amount, cp money.Money) error {
	left := leftOf(cp, money.Money{Minor: spent.Minor + due.Minor, Currency: spent.Currency}, held)
	return fault.Newf(CapExceeded,
		"the monthly %s cap for %s would be exceeded: %s spent + %s held + %s of renewals still due (recurring total %s per month) + %s requested is more than the %s cap (%s left); "+
			"nothing was charged. Ask the operator to raise this principal's cap (tollgate spend cap set --provider %s), or wait for next month (caps reset on the 1st, UTC).",
		provider, month, spent, held, due, recurring, amount, cp, left, provider)
}

func errRecurringExceeded(provider string, total, adding, std money.Money) error {
	return fault.Newf(CapExceeded,
		"the recurring %s commitments would exceed the monthly cap: the recurring total is %s per month, and %s more is more than the %s cap of the months to come; "+
			"nothing was charged and no subscription was started. Cancel a subscription, or ask the operator to raise the standing cap "+
			"(tollgate spend cap set --provider %s).",
		provider, total, adding, std, provider)
}

func errBudgetExceeded(sid, provider string, spent, held, amount, mx money.Money, innermost bool) error {
	left := leftOf(mx, spent, held)
	whose := "the task budget of session " + sid
	if !innermost {
		whose = "the task budget of ancestor session " + sid
	}
	return fault.Newf(BudgetExceeded,
		"%s for %s would be exceeded: %s spent + %s held + %s requested is more than its %s maximum (%s left); "+
			"nothing was charged. Ask the delegating agent or the principal for a larger task budget.",
		whose, provider, spent, held, amount, mx, left)
}

func errHoldExpired(h Hold, ttl time.Duration) error {
	return fault.Newf(HoldExpired,
		"hold %q of %s at %s expired (holds last %s) and its amount was freed, so this call recorded and charged nothing. "+
			"If the provider did charge, the operator records it with `tollgate spend reconcile`; otherwise release the hold.",
		h.ID, h.Amount, h.Provider, ttl)
}
