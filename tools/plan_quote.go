package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// QuoteConfig configures plan_quote.
type QuoteConfig struct {
	Catalog      *catalog.Catalog
	Ledger       SpendReader
	ConfirmAbove money.Money
	// Tools looks up a tool's declaration (its scopes and gates).
	Tools func(name string) (Tool, bool)
}

type planAction struct {
	Tool      string         `json:"tool" jsonschema:"a tollgate tool name, e.g. domain_register"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

type planQuoteArgs struct {
	Actions []planAction `json:"actions" jsonschema:"the calls the agent intends to make, in order"`
}

type quotedAction struct {
	Tool   string        `json:"tool"`
	Item   string        `json:"item,omitempty"`
	Cost   *money.Amount `json:"cost,omitempty"`
	Gates  []string      `json:"gates"`
	Scopes []string      `json:"scopes"`
	Note   string        `json:"note,omitempty"`
}

type providerQuote struct {
	Provider            string        `json:"provider"`
	Total               money.Amount  `json:"total"`
	Remaining           money.Amount  `json:"remaining" jsonschema:"left under this month's cap"`
	FitsCap             bool          `json:"fits_cap"`
	TaskBudgetRemaining *money.Amount `json:"task_budget_remaining,omitempty"`
	FitsTaskBudget      *bool         `json:"fits_task_budget,omitempty"`
}

type planQuoteResult struct {
	Actions      []quotedAction  `json:"actions"`
	Providers    []providerQuote `json:"providers"`
	Scopes       []string        `json:"scopes" jsonschema:"every scope the plan needs"`
	MissingScope []string        `json:"missing_scopes" jsonschema:"needed scopes this token lacks"`
	Gates        []string        `json:"gates" jsonschema:"human gates that will be asked"`
	Fits         bool            `json:"fits" jsonschema:"the plan fits the remaining caps and task budgets"`
}

// PlanQuote prices a list of intended actions without calling any provider.
func PlanQuote(cfg QuoteConfig) Tool {
	return Tool{
		def: mcp.NewTool("plan_quote",
			mcp.WithDescription("Quote a plan before doing it: for a list of intended tool calls, the cost per provider (catalog list prices; domain_check gives the exact price), the human gates that will be asked, the scopes needed (and which this token lacks), and whether it fits this month's remaining caps and this task's budget. Calls no provider and changes nothing."),
			mcp.WithInputSchema[planQuoteArgs](),
			mcp.WithOutputSchema[planQuoteResult](),
			annotate(true, false, true, false),
		),
		Scopes: []string{"catalog:read"},
		run: handler[planQuoteArgs, planQuoteResult]{do: func(ctx context.Context, c Call[planQuoteArgs]) (planQuoteResult, error) {
			if n := len(c.Args.Actions); n == 0 || n > 50 {
				return planQuoteResult{}, fault.New(fault.InvalidArgument, "actions must list 1 to 50 intended tool calls")
			}
			return quotePlan(ctx, cfg, c.Caller, c.Args.Actions)
		}},
	}
}

func quotePlan(ctx context.Context, cfg QuoteConfig, caller *auth.Claims, actions []planAction) (planQuoteResult, error) {
	out := planQuoteResult{Actions: []quotedAction{}, Scopes: []string{}, MissingScope: []string{}, Gates: []string{}, Fits: true}
	totals := map[string]money.Money{}
	for i, act := range actions {
		t, ok := cfg.Tools(act.Tool)
		if !ok || act.Tool == "plan_quote" {
			return out, fault.Newf(fault.InvalidArgument, "actions[%d]: %q is not a tollgate tool", i, act.Tool)
		}
		qa := quotedAction{Tool: act.Tool, Gates: []string{}, Scopes: append([]string{}, t.Scopes...)}
		cost, item, err := listPrice(cfg.Catalog, act)
		if err != nil {
			return out, fault.Wrap(err, fault.InvalidArgument, fmt.Sprintf("actions[%d] (%s): %s", i, act.Tool, fault.PublicOf(err)))
		}
		if cost != nil {
			c := cost.Amount()
			qa.Cost, qa.Item = &c, item
			prov := t.Provider
			sum, had := totals[prov]
			if had && sum.Currency != cost.Currency {
				return out, fault.Newf(fault.InvalidArgument, "actions mix currencies at %s", prov)
			}
			totals[prov] = money.Money{Minor: sum.Minor + cost.Minor, Currency: cost.Currency}
		}
		for _, g := range t.Gates {
			if g == string(human.Purchase) && cost != nil && act.Tool != "subscription_start" &&
				cfg.ConfirmAbove.Minor > 0 && cost.Minor < cfg.ConfirmAbove.Minor {
				continue // below the confirmation threshold
			}
			qa.Gates = append(qa.Gates, g)
			if !slices.Contains(out.Gates, g) {
				out.Gates = append(out.Gates, g)
			}
		}
		for _, s := range t.Scopes {
			if !slices.Contains(out.Scopes, s) {
				out.Scopes = append(out.Scopes, s)
			}
		}
		out.Actions = append(out.Actions, qa)
	}
	have := caller.Scopes()
	for _, s := range out.Scopes {
		if !slices.Contains(have, s) {
			out.MissingScope = append(out.MissingScope, s)
		}
	}
	provs := make([]string, 0, len(totals))
	for p := range totals {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	out.Providers = []providerQuote{}
	for _, p := range provs {
		total := totals[p]
		st, err := cfg.Ledger.Status(ctx, caller.Subject, p)
		if err != nil {
			return out, err
		}
		pq := providerQuote{Provider: p, Total: total.Amount(), Remaining: st.Remaining.Amount(), FitsCap: total.Minor <= st.Remaining.Minor}
		if limit, ok := caller.AuthorizationDetails.Budget(p); ok {
			_, _, left, err := cfg.Ledger.BudgetStatus(ctx, caller.Subject, caller.SessionID, p, limit)
			if err != nil {
				return out, err
			}
			fits := total.Minor <= left.Minor
			pq.TaskBudgetRemaining, pq.FitsTaskBudget = money.AmountPtr(&left), &fits
			out.Fits = out.Fits && fits
		}
		out.Fits = out.Fits && pq.FitsCap
		out.Providers = append(out.Providers, pq)
	}
	return out, nil
}

// listPrice is an action's catalog list price (nil when free).
func listPrice(cat *catalog.Catalog, act planAction) (*money.Money, string, error) {
	switch act.Tool {
	case "domain_register":
		raw, _ := act.Arguments["domain"].(string)
		name, err := domainname.Parse(raw)
		if err != nil {
			return nil, "", err
		}
		svc, ok := cat.DomainPrice(name.TLD())
		if !ok {
			return nil, "", fault.Newf(fault.NotFound, "the catalog has no price for .%s; domain_check asks Cloudflare", name.TLD())
		}
		years := max(svc.MinYears, 1)
		if y, ok := act.Arguments["years"]; ok {
			n, err := json.Number(fmt.Sprint(y)).Int64()
			if err != nil || n < 1 || n > 10 {
				return nil, "", fault.Newf(fault.InvalidArgument, "years must be a whole number from 1 to 10")
			}
			years = int(n)
		}
		p := svc.Pricing.Price()
		m := money.Money{Minor: p.Minor * int64(years), Currency: p.Currency}
		return &m, fmt.Sprintf("%s for %d year(s)", name, years), nil
	case "subscription_start":
		plan, _ := act.Arguments["plan"].(string)
		svc, err := cat.Plan(plan)
		if err != nil {
			return nil, "", err
		}
		m := svc.Pricing.Price()
		return &m, fmt.Sprintf("%s (%s per %s)", svc.Name, m, svc.Pricing.Interval), nil
	}
	return nil, "", nil
}
