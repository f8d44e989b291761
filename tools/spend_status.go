package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// SpendReader reads the ledger for spend_status.
type SpendReader interface {
	Status(ctx context.Context, principal, provider string) (spend.Status, error)
	BudgetStatus(ctx context.Context, principal, session, provider string, limit money.Money) (spent, held, remaining money.Money, err error)
}

type spendStatusArgs struct {
	Provider string `json:"provider,omitempty" jsonschema:"only this provider,enum=cloudflare,enum=stripe"`
	Month    string `json:"month,omitempty" jsonschema:"another UTC calendar month, YYYY-MM (default: this month)"`
}

// monthReader reads any month (spend.Ledger does).
type monthReader interface {
	MonthStatus(ctx context.Context, principal, provider, month string) (spend.Status, error)
}

type providerSpend struct {
	Provider  string       `json:"provider"`
	Month     string       `json:"month" jsonschema:"UTC calendar month, e.g. 2026-11"`
	Spent     money.Amount `json:"spent"`
	Held      money.Amount `json:"held"`
	Cap       money.Amount `json:"cap"`
	Remaining money.Amount `json:"remaining"`
	// Recurring is the sum of the active subscriptions' per-month charges.
	Recurring money.Amount `json:"recurring"`
	Note      string       `json:"note,omitempty" jsonschema:"why remaining is zero when the cap is below what is spent"`
	// The task budget of this token (tollgate:spend), when it has one.
	TaskBudget          *money.Amount `json:"task_budget,omitempty"`
	TaskBudgetRemaining *money.Amount `json:"task_budget_remaining,omitempty"`
}

type spendStatusResult struct {
	Principal string          `json:"principal"`
	Providers []providerSpend `json:"providers"`
}

// SpendStatus reports month-to-date spend, holds and cap per provider, and
// the task budget left.
func SpendStatus(ledger SpendReader) Tool {
	return Tool{
		def: mcp.NewTool("spend_status",
			mcp.WithDescription("Month-to-date spend, money held for calls in flight, the monthly cap and what remains, per provider (UTC calendar month), plus this task's budget left when its token has one. Amounts are integer minor units. Calls no provider."),
			mcp.WithInputSchema[spendStatusArgs](),
			mcp.WithOutputSchema[spendStatusResult](),
			annotate(true, false, true, false),
		),
		Scopes: []string{"spend:read"},
		run: handler[spendStatusArgs, spendStatusResult]{do: func(ctx context.Context, c Call[spendStatusArgs]) (spendStatusResult, error) {
			a, cl := c.Args, c.Caller
			providers := spend.Providers()
			if a.Provider != "" {
				if !spend.KnownProvider(a.Provider) {
					return spendStatusResult{}, fault.Newf(fault.InvalidArgument, "provider %q is unknown; use cloudflare or stripe, or leave it out", a.Provider)
				}
				providers = []string{a.Provider}
			}
			out := spendStatusResult{Principal: cl.Subject, Providers: []providerSpend{}}
			for _, p := range providers {
				var st spend.Status
				var err error
				if mr, ok := ledger.(monthReader); ok && a.Month != "" {
					st, err = mr.MonthStatus(ctx, cl.Subject, p, a.Month)
				} else if a.Month != "" {
					err = fault.New(fault.InvalidArgument, "this server cannot show other months; leave month out")
				} else {
					st, err = ledger.Status(ctx, cl.Subject, p)
				}
				if err != nil {
					return spendStatusResult{}, err
				}
				rec := st.Recurring
				if rec.Currency == "" {
					rec.Currency = st.Cap.Currency
				}
				ps := providerSpend{Provider: p, Month: st.Month, Spent: st.Spent.Amount(), Held: st.Held.Amount(), Cap: st.Cap.Amount(), Remaining: st.Remaining.Amount(),
					Recurring: rec.Amount(), Note: st.Note}
				if limit, ok := cl.AuthorizationDetails.Budget(p); ok {
					_, _, left, err := ledger.BudgetStatus(ctx, cl.Subject, cl.SessionID, p, limit)
					if err != nil {
						return spendStatusResult{}, err
					}
					ps.TaskBudget, ps.TaskBudgetRemaining = money.AmountPtr(&limit), money.AmountPtr(&left)
				}
				out.Providers = append(out.Providers, ps)
			}
			return out, nil
		}},
	}
}
