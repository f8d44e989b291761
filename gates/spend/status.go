package spend

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Status is a principal's month-to-date position at one provider.
type Status struct {
	Provider  string      `json:"provider"`
	Month     string      `json:"month"`
	Spent     money.Money `json:"spent"`
	Held      money.Money `json:"held"`
	Cap       money.Money `json:"cap"`
	Remaining money.Money `json:"remaining"` // cap - spent - held - due, never below zero
	// Recurring is the sum of the recurring commitments at the provider
	// (subscriptions), per month of charge.
	Recurring money.Money `json:"recurring"`
	// Due is the part of Recurring due this month and not charged yet: it
	// is reserved like a hold.
	Due money.Money `json:"due"`
	// Note explains a remaining of zero when the cap is below what is
	// spent, held and due.
	Note string `json:"note,omitempty"`
}

// Status returns principal's spent, held, cap and remaining at provider for
// the current UTC month, after expiring the principal's due holds. One round
// trip once the script is cached.
func (l *Ledger) Status(ctx context.Context, principal, provider string) (Status, error) {
	return l.MonthStatus(ctx, principal, provider, month(l.cfg.Now()))
}

// BudgetStatus returns what is spent and held under session's task budget
// at provider, and what is left of limit (the budget from the session's
// token), after expiring the principal's due holds.
func (l *Ledger) BudgetStatus(ctx context.Context, principal, session, provider string, limit money.Money) (spent, held, remaining money.Money, err error) {
	var zero money.Money
	if !validPrincipal(principal) || !validSessionID(session) {
		return zero, zero, zero, invalid("the principal or session id is malformed.")
	}
	if !KnownProvider(provider) {
		return zero, zero, zero, invalid("unknown provider %q (use %s).", provider, strings.Join(Providers(), " or "))
	}
	if err := checkAmount(&limit, true, "the task budget"); err != nil {
		return zero, zero, zero, err
	}
	spent, held, cur, err := l.read(ctx, "budget status", principal, l.keys.budget(principal, session, provider), limit.Currency)
	if err != nil {
		return zero, zero, zero, err
	}
	if cur != "" && cur != limit.Currency {
		return zero, zero, zero, invalidAmount("the task budget of session %s is kept in %s, not %s.",
			session, strings.ToUpper(cur), strings.ToUpper(limit.Currency))
	}
	return spent, held, leftOf(limit, spent, held), nil
}

// leftOf is limit - spent - held, never below zero.
func leftOf(limit, spent, held money.Money) money.Money {
	return money.Money{Minor: max(0, limit.Minor-spent.Minor-held.Minor), Currency: limit.Currency}
}

// read runs readLua on one counter hash.
func (l *Ledger) read(ctx context.Context, op, principal, key, currency string) (spent, held money.Money, stored string, err error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.read.Run(ctx, l.rdb, []string{key, l.keys.open(principal)},
		l.keys.base(principal), ms(l.cfg.Now()), reapLimit).Result()
	if err != nil {
		return spent, held, "", unavailable(op, err, msgReadDown)
	}
	r, err := parseReply(res)
	if err != nil || r.code != rReadCounters {
		return spent, held, "", internal(op, "reply %v: %v", res, err)
	}
	if spent, held, err = r.pair(1, currency); err != nil {
		return spent, held, "", internal(op, "%v", err)
	}
	return spent, held, r.str(3), nil
}

// HoldFilter selects holds for Holds.
type HoldFilter struct {
	// Principal selects one principal's holds; "" lists every principal's
	// (operator use), through the principals index.
	Principal string
	// Stale keeps only holds that need reconciliation: expired ones, and
	// open ones whose TTL has passed.
	Stale bool
	// Limit caps the number of holds returned (0: DefaultHoldsLimit; at
	// most MaxHoldsLimit).
	Limit int
}

// Limits of Holds.
const (
	DefaultHoldsLimit = 1000
	MaxHoldsLimit     = 10000
)

// Holds lists unsettled holds, for `tollgate spend holds`: open ones and
// expired ones not yet reconciled, by expiry, oldest first. Committed and
// released holds are not listed (Get reads them). It expires due holds of
// every principal it reads first, so a hold whose TTL passed is listed as
// expired. A principal that is not well-formed has no holds.
func (l *Ledger) Holds(ctx context.Context, f HoldFilter) ([]Hold, error) {
	if f.Principal != "" && !validPrincipal(f.Principal) {
		return nil, nil
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, invalid("the holds limit must not be negative.")
	case limit == 0:
		limit = DefaultHoldsLimit
	case limit > MaxHoldsLimit:
		limit = MaxHoldsLimit
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	principals := []string{f.Principal}
	if f.Principal == "" {
		var err error
		if principals, err = l.rdb.ZRange(ctx, l.keys.principals(), 0, -1).Result(); err != nil {
			return nil, unavailable("holds", err, msgReadDown)
		}
	}
	now := l.cfg.Now()
	var out []Hold
	for _, p := range principals {
		if !validPrincipal(p) {
			continue
		}
		res, err := l.scripts.list.Run(ctx, l.rdb, []string{l.keys.open(p), l.keys.stale(p)},
			l.keys.base(p), ms(now), reapLimit, limit).Result()
		if err != nil {
			return nil, unavailable("holds", err, msgReadDown)
		}
		r, err := parseReply(res)
		if err != nil || r.code != rListed {
			return nil, internal("holds", "reply %v: %v", res, err)
		}
		for i := 1; i < len(r.vals); i++ {
			h, err := r.record(i)
			if err != nil {
				return nil, internal("holds", "%v", err)
			}
			if !f.Stale || h.Stale(now) {
				out = append(out, h)
			}
		}
	}
	slices.SortFunc(out, func(a, b Hold) int {
		return cmp.Or(a.Expires.Compare(b.Expires), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ReapExpired expires every hold of principal whose TTL has passed, freeing
// their amounts and listing them as stale, and returns how many it expired.
// Every ledger call of the principal does this for up to 100 holds; this
// finishes the job (e.g. from `tollgate spend holds`).
func (l *Ledger) ReapExpired(ctx context.Context, principal string) (int, error) {
	if !validPrincipal(principal) {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	total := 0
	for {
		res, err := l.scripts.reap.Run(ctx, l.rdb, []string{l.keys.open(principal), l.keys.stale(principal)},
			l.keys.base(principal), ms(l.cfg.Now()), reapLimit).Result()
		if err != nil {
			return total, unavailable("reap", err, msgReadDown)
		}
		r, err := parseReply(res)
		if err != nil || r.code != rReaped {
			return total, internal("reap", "reply %v: %v", res, err)
		}
		n, err := r.int(1)
		if err != nil {
			return total, internal("reap", "%v", err)
		}
		total += int(n)
		if n < reapLimit {
			return total, nil
		}
	}
}
