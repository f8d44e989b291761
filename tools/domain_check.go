package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

type domainCheckArgs struct {
	Domain string `json:"domain" jsonschema:"the domain to check, e.g. shop.example"`
}

type domainCheckResult struct {
	Domain       string        `json:"domain"`
	Available    bool          `json:"available"`
	Reason       string        `json:"reason,omitempty"`
	Price        *money.Amount `json:"price,omitempty" jsonschema:"the first year"`
	RenewalPrice *money.Amount `json:"renewal_price,omitempty" jsonschema:"each further year"`
	MinYears     int           `json:"min_years"`
}

// DomainCheck asks the Registrar whether a domain can be registered and at
// what exact price. It buys nothing.
func DomainCheck() Tool {
	return Tool{
		def: mcp.NewTool("domain_check",
			mcp.WithDescription("Check at Cloudflare Registrar, in the human's linked account, whether a domain can be registered and its exact at-cost price (integer minor units). Buys nothing. The domain must be one this task's token names, when it names any."),
			mcp.WithInputSchema[domainCheckArgs](),
			mcp.WithOutputSchema[domainCheckResult](),
			annotate(true, false, true, true),
		),
		Scopes:   []string{"domain:read"},
		Provider: "cloudflare",
		Metered:  true,
		Target:   "domain",
		Account:  true,
		run: handler[domainCheckArgs, domainCheckResult]{do: func(ctx context.Context, c Call[domainCheckArgs]) (domainCheckResult, error) {
			if c.Target == "" || c.Tenant.Cloudflare == nil {
				return domainCheckResult{}, fault.New(fault.Internal, "no checked domain or account; nothing was sent")
			}
			av, err := c.Tenant.Cloudflare.CheckDomain(ctx, c.Target)
			if err != nil {
				return domainCheckResult{}, err
			}
			out := domainCheckResult{Domain: string(av.Name), Available: av.Available, Reason: av.Reason, MinYears: av.MinYears}
			if av.Available {
				p, r := av.Price.Amount(), av.RenewalPrice.Amount()
				out.Price, out.RenewalPrice = &p, &r
			}
			return out, nil
		}},
	}
}
