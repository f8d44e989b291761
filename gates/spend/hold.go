package spend

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// State is where a hold is in its life.
type State string

const (
	// StateHeld: the amount is held; the caller may call the provider.
	StateHeld State = "held"
	// StateCommitted: the actual amount is spent (by Commit, or by
	// Reconcile of an expired hold).
	StateCommitted State = "committed"
	// StateReleased: nothing was charged (by Release, also of an expired
	// hold, which reconciles it).
	StateReleased State = "released"
	// StateExpired: the TTL passed without a commit or release; the amount
	// was freed and the hold waits for reconciliation.
	StateExpired State = "expired"
)

// Budget is a task budget along the session chain (a tollgate:spend
// authorization detail): at most Max may be spent and held under Session
// for the hold's provider.
type Budget struct {
	Session string      `json:"session"`
	Max     money.Money `json:"max"`
}

// HoldRequest asks to hold Amount at Provider for Principal.
type HoldRequest struct {
	// HoldID names the hold, chosen by the caller so that a retry is
	// idempotent (derive it from the idempotency key). Empty: Config.NewID.
	HoldID    string
	Principal string
	Provider  string
	// Amount is the quoted price: above zero, in the cap's currency.
	Amount money.Money
	// Budgets are the task budgets of the calling session and its
	// ancestors, innermost first. The hold counts against each of them.
	Budgets []Budget
	// Tool and Description are recorded for `tollgate spend holds`.
	Tool, Description string
	// Recurring, when above zero, makes the hold the first period of a
	// recurring commitment of that much per calendar month of charge (a
	// subscription): the hold is refused (CapExceeded) unless every
	// commitment at the provider, this one included, fits the standing cap
	// of every future month. The commitment is kept under the hold id until
	// it is ended (EndRecurring) or the hold is released.
	Recurring money.Money
}

// Hold is a hold record. Times are kept to the millisecond.
type Hold struct {
	ID        string      `json:"id"`
	Principal string      `json:"principal"`
	Provider  string      `json:"provider"`
	Amount    money.Money `json:"amount"`
	// Month is the UTC calendar month the hold was made in, "2026-11"; its
	// commit or release settles that month.
	Month       string    `json:"month"`
	Budgets     []Budget  `json:"budgets,omitempty"`
	Tool        string    `json:"tool,omitempty"`
	Description string    `json:"description,omitempty"`
	State       State     `json:"state"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	// Settled is when the hold was committed, released or expired.
	Settled time.Time `json:"settled,omitzero"`
	// Reconciled is when an expired hold was released or reconciled.
	Reconciled time.Time `json:"reconciled,omitzero"`
	// Actual is the committed amount (zero unless committed).
	Actual money.Money `json:"actual,omitzero"`
	// Reason is the release reason or the reconciliation note.
	Reason string `json:"reason,omitempty"`
}

// Stale reports whether the hold needs reconciliation at now: it expired,
// or its TTL has passed and nothing has expired it yet.
func (h Hold) Stale(now time.Time) bool {
	return h.State == StateExpired || h.State == StateHeld && !now.Before(h.Expires)
}

// Hold holds req.Amount against the principal's monthly cap at the provider
// and against every task budget in req.Budgets, atomically, in one Redis
// round trip once the script is cached. It first expires the principal's
// holds whose TTL has passed.
//
// The error is nil only when the returned hold is open (StateHeld): then,
// and only then, may the caller call the provider, and it must Commit or
// Release afterwards. Replaying a HoldID returns the existing hold and never
// holds twice; it is an error when that hold was settled since
// (HoldConflict, HoldExpired) or differs in provider, amount or budgets
// (HoldConflict). Refusals: CapExceeded, BudgetExceeded, InvalidAmount,
// fault.InvalidArgument, and fault.Unavailable when Redis errs or times out.
func (l *Ledger) Hold(ctx context.Context, req HoldRequest) (Hold, error) {
	now := l.cfg.Now()
	if req.HoldID == "" {
		req.HoldID = l.cfg.NewID()
	}
	if err := l.validateHold(&req); err != nil {
		return Hold{}, err
	}
	cp, err := l.capFor(req.Principal, req.Provider)
	if err != nil {
		return Hold{}, err
	}
	if req.Amount.Currency != cp.Currency {
		return Hold{}, invalidAmount("the amount %s is not in %s, the currency of the %s cap; nothing was charged. Quote the price in %s.",
			req.Amount, strings.ToUpper(cp.Currency), req.Provider, strings.ToUpper(cp.Currency))
	}
	mon := month(now)
	keys, args := l.holdCall(req, cp, mon, now)
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.runIndexed(ctx, l.scripts.hold, keys, args, req.Principal, now)
	if err != nil {
		return Hold{}, unavailable("hold", err, msgHoldDown)
	}
	return l.holdReply(res, req, cp, mon)
}

// holdReply reads holdLua's reply to req.
func (l *Ledger) holdReply(res any, req HoldRequest, cp money.Money, mon string) (Hold, error) {
	r, err := parseReply(res)
	if err != nil {
		return Hold{}, internal("hold", "%v", err)
	}
	switch r.code {
	case rHeld, rReplay:
		h, err := r.record(1)
		if err != nil {
			return Hold{}, internal("hold", "%v", err)
		}
		return h, replayError(h, l.cfg.HoldTTL)
	case rCap:
		spent, held, err := r.pair(1, cp.Currency)
		if err != nil {
			return Hold{}, internal("hold", "%v", err)
		}
		capv, pend, err := r.pair(3, cp.Currency)
		if err != nil {
			return Hold{}, internal("hold", "%v", err)
		}
		total, _ := r.int(5)
		return Hold{}, errCapExceeded(req.Provider, mon, spent, held, pend, money.Money{Minor: total, Currency: cp.Currency}, req.Amount, capv)
	case rRecurring:
		total, std, err := r.pair(1, cp.Currency)
		if err != nil {
			return Hold{}, internal("hold", "%v", err)
		}
		return Hold{}, errRecurringExceeded(req.Provider, total, req.Recurring, std)
	case rBudget:
		i, err := r.int(1)
		if err != nil || i < 1 || int(i) > len(req.Budgets) {
			return Hold{}, internal("hold", "budget index %d: %v", i, err)
		}
		spent, held, err := r.pair(2, cp.Currency)
		if err != nil {
			return Hold{}, internal("hold", "%v", err)
		}
		b := req.Budgets[i-1]
		return Hold{}, errBudgetExceeded(b.Session, req.Provider, spent, held, req.Amount, b.Max, i == 1)
	case rConflict:
		return Hold{}, fault.Newf(HoldConflict,
			"hold id %q is already used by a different hold (another provider, amount or budget chain); nothing was charged. Use a new hold id.",
			req.HoldID)
	case rCapCurrency:
		return Hold{}, errCurrencyDrift(req.Provider, mon, r.str(1), cp.Currency)
	case rBudgetCurr:
		i, _ := r.int(1)
		sid := "?"
		if i >= 1 && int(i) <= len(req.Budgets) {
			sid = req.Budgets[i-1].Session
		}
		return Hold{}, invalidAmount("the task budget of session %s is kept in %s, but this hold is in %s; nothing was charged.",
			sid, strings.ToUpper(r.str(2)), strings.ToUpper(req.Amount.Currency))
	default:
		return Hold{}, internal("hold", "script replied %d", r.code)
	}
}

// replayError is nil for an open hold and explains why any other may not be
// used to call the provider.
func replayError(h Hold, ttl time.Duration) error {
	switch h.State {
	case StateHeld:
		return nil
	case StateExpired:
		return errHoldExpired(h, ttl)
	case StateCommitted:
		return fault.Newf(HoldConflict,
			"hold %q was already committed (%s charged); it cannot hold money again and nothing new was charged. Use a new hold id for a new purchase.",
			h.ID, h.Actual)
	default:
		return fault.Newf(HoldConflict,
			"hold %q was already released; it cannot hold money again and nothing was charged. Use a new hold id.", h.ID)
	}
}

func errCurrencyDrift(provider, mon, stored, want string) error {
	return fault.New(fault.Internal, "the "+provider+" spending of "+mon+" is recorded in "+strings.ToUpper(stored)+
		" but the cap is now in "+strings.ToUpper(want)+", so the call was refused; nothing was charged. "+
		"The operator must keep each provider's cap in one currency within a month.")
}

// validateHold checks a request and canonicalises its currencies.
func (l *Ledger) validateHold(req *HoldRequest) error {
	if !validPrincipal(req.Principal) {
		return invalid("the principal is missing or not printable text of at most %d bytes; nothing was charged.", maxPrincipal)
	}
	if !validHoldID(req.HoldID) {
		return invalid("the hold id must match [A-Za-z0-9._~:-]{1,%d}; nothing was charged.", maxID)
	}
	if !KnownProvider(req.Provider) {
		return invalid("unknown provider %q (use %s); nothing was charged.", req.Provider, strings.Join(Providers(), " or "))
	}
	if err := checkAmount(&req.Amount, false, "amount"); err != nil {
		return err
	}
	if req.Recurring != (money.Money{}) {
		if err := checkAmount(&req.Recurring, false, "the recurring amount"); err != nil {
			return err
		}
		if req.Recurring.Currency != req.Amount.Currency {
			return invalidAmount("the recurring amount %s is not in the currency of the amount %s; nothing was charged.", req.Recurring, req.Amount)
		}
	}
	if len(req.Budgets) > maxBudgets {
		return invalid("a hold names at most %d task budgets; nothing was charged.", maxBudgets)
	}
	seen := make(map[string]bool, len(req.Budgets))
	for i := range req.Budgets {
		b := &req.Budgets[i]
		if !validSessionID(b.Session) || seen[b.Session] {
			return invalid("task budget %d names session %q, which is malformed or named twice; nothing was charged.", i+1, b.Session)
		}
		seen[b.Session] = true
		if err := checkAmount(&b.Max, true, "the task budget of session "+b.Session); err != nil {
			return err
		}
		if b.Max.Currency != req.Amount.Currency {
			return invalidAmount("the task budget of session %s is in %s but the amount is in %s; nothing was charged.",
				b.Session, strings.ToUpper(b.Max.Currency), strings.ToUpper(req.Amount.Currency))
		}
	}
	if !optionalText(req.Tool, maxTool) || !optionalText(req.Description, maxDescription) {
		return invalid("the tool name (at most %d bytes) and description (at most %d bytes) must be printable text; nothing was charged.",
			maxTool, maxDescription)
	}
	return nil
}

// checkAmount accepts a supported currency (lowercased in place) and
// 0 < minor ≤ MaxMinor, or 0 ≤ minor when zeroOK.
func checkAmount(m *money.Money, zeroOK bool, what string) error {
	if _, ok := money.Exponent(m.Currency); !ok {
		return invalidAmount("%s has an unsupported currency %q (use usd, eur or gbp); nothing was charged.", what, m.Currency)
	}
	m.Currency = strings.ToLower(m.Currency)
	switch {
	case m.Minor < 0 || m.Minor == 0 && !zeroOK:
		return invalidAmount("%s must be above zero, not %s; nothing was charged.", what, m)
	case m.Minor > MaxMinor:
		return invalidAmount("%s %s is above the ledger's maximum; nothing was charged.", what, m)
	}
	return nil
}

// holdCall returns the keys and arguments of holdLua.
func (l *Ledger) holdCall(req HoldRequest, cp money.Money, mon string, now time.Time) ([]string, []any) {
	p := req.Principal
	keys := []string{l.keys.hold(p, req.HoldID), l.keys.cap(p, req.Provider, mon), l.keys.open(p), l.keys.stale(p)}
	sids := make([]string, len(req.Budgets))
	maxes := make([]string, len(req.Budgets))
	for i, b := range req.Budgets {
		keys = append(keys, l.keys.budget(p, b.Session, req.Provider))
		sids[i] = b.Session
		maxes[i] = strconv.FormatInt(b.Max.Minor, 10)
	}
	expires := now.Add(l.cfg.HoldTTL)
	amount := strconv.FormatInt(req.Amount.Minor, 10)
	budgets := strings.Join(sids, ",")
	fields := []any{
		fID, req.HoldID,
		fPrincipal, p,
		fProvider, req.Provider,
		fAmount, amount,
		fCurrency, req.Amount.Currency,
		fMonth, mon,
		fState, string(StateHeld),
		fCreated, ms(now),
		fExpires, ms(expires),
		fBudgets, budgets,
		fBudgetMax, strings.Join(maxes, ","),
		fTool, req.Tool,
		fDescription, req.Description,
	}
	args := []any{l.keys.base(p), ms(now), req.HoldID, reapLimit, l.cfg.Retention.Milliseconds(),
		p, req.Provider, amount, req.Amount.Currency, budgets, cp.Minor, ms(expires), len(fields)}
	args = append(args, fields...)
	for _, m := range maxes {
		args = append(args, m)
	}
	args = append(args, mon, strconv.FormatInt(req.Recurring.Minor, 10), nextMonth(mon))
	return keys, args
}

// runIndexed runs script with the principal's entry in the principals
// index refreshed in the same pipeline: one round trip. When Redis does not
// know the script yet it is sent whole (EVAL), as redis.Script.Run does.
// Any error of either command is an error: fail closed.
func (l *Ledger) runIndexed(ctx context.Context, s *redis.Script, keys []string, args []any, principal string, now time.Time) (any, error) {
	if l.indexedRecently(principal, now) {
		// The principals index already has it (touchIndex): the script
		// alone.
		return s.Run(ctx, l.rdb, keys, args...).Result()
	}
	var idx *redis.IntCmd
	var eval *redis.Cmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		idx = p.ZAddGT(ctx, l.keys.principals(), redis.Z{Score: float64(ms(now)), Member: principal})
		eval = s.EvalSha(ctx, p, keys, args...)
		return nil
	})
	if eval != nil && isNoScript(eval.Err()) {
		if idx.Err() != nil {
			return nil, idx.Err()
		}
		l.noteIndexed(principal, now)
		return s.Eval(ctx, l.rdb, keys, args...).Result()
	}
	if err != nil {
		return nil, err
	}
	l.noteIndexed(principal, now)
	return eval.Result()
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// ms is t in unix milliseconds, the unit of every time in Redis.
func ms(t time.Time) int64 { return t.UnixMilli() }
