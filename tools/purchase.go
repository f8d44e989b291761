package tools

import (
	"context"
	"fmt"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// purchaseAsk is the purchase gate (SPEC §8): asked for purchases at or
// above the confirmation threshold, showing the item, the exact price, the
// provider and the month-to-date spend there.
func purchaseAsk(ctx context.Context, ledger SpendReader, caller *auth.Claims, above money.Money, provider string, q *Quote) ([]Ask, error) {
	if q == nil || (above.Minor > 0 && above.Currency == q.Amount.Currency && q.Amount.Minor < above.Minor) {
		return nil, nil
	}
	st, err := ledger.Status(ctx, caller.Subject, provider)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("Approve a purchase at %s: %s for %s.\nMonth to date (%s) at %s: %s spent, %s held, cap %s, %s left.",
		provider, q.Item, q.Amount, st.Month, provider, st.Spent, st.Held, st.Cap, st.Remaining)
	fields := map[string]string{
		"item": q.Item, "price": q.Amount.String(), "provider": provider,
		"month_to_date": st.Spent.String(), "held": st.Held.String(), "cap": st.Cap.String(),
		"cap_left": st.Remaining.String(),
	}
	// The task's own budget at this provider, and what is left of it. It is
	// shown on the approvals page, not in the message: the message is what a
	// human approves and must not change as other calls of the task spend.
	if limit, ok := caller.AuthorizationDetails.Budget(provider); ok {
		spent, held, left, err := ledger.BudgetStatus(ctx, caller.Subject, caller.SessionID, provider, limit)
		if err != nil {
			return nil, err
		}
		fields["task_budget"] = limit.String()
		fields["task_budget_left"] = fmt.Sprintf("%s (%s spent, %s held)", left, spent, held)
	}
	return []Ask{{Kind: human.Purchase, Message: msg, Fields: fields}}, nil
}
