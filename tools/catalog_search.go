package tools

import (
	"context"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

type catalogSearchArgs struct {
	Query    string `json:"query" jsonschema:"words to look for in service ids, names, descriptions and tags; empty lists everything"`
	Provider string `json:"provider,omitempty" jsonschema:"only services of this provider,enum=cloudflare,enum=stripe"`
}

type catalogSearchResult struct {
	Services   []catalog.Service `json:"services"`
	Count      int               `json:"count"`
	PricesAsOf string            `json:"prices_as_of"`
}

// CatalogSearch finds services that can be provisioned, with their prices.
func CatalogSearch(cat *catalog.Catalog) Tool {
	return Tool{
		def: mcp.NewTool("catalog_search",
			mcp.WithDescription("Search the catalog of what tollgate can provision (domains, zones, DNS, SSL, API tokens, Workers, Stripe plans). Returns each service with its price in integer minor units, the tool that provisions it, the scopes and the human gates it needs. Calls no provider."),
			mcp.WithInputSchema[catalogSearchArgs](),
			mcp.WithOutputSchema[catalogSearchResult](),
			annotate(true, false, true, false),
		),
		Scopes: []string{"catalog:read"},
		run: handler[catalogSearchArgs, catalogSearchResult]{do: func(ctx context.Context, c Call[catalogSearchArgs]) (catalogSearchResult, error) {
			a := c.Args
			if len(a.Query) > 200 {
				return catalogSearchResult{}, fault.New(fault.InvalidArgument, "query is longer than 200 characters; search with a few words")
			}
			p := strings.ToLower(a.Provider)
			if p != "" && p != "cloudflare" && p != "stripe" {
				return catalogSearchResult{}, fault.Newf(fault.InvalidArgument, "provider %q is unknown; use cloudflare or stripe, or leave it out", a.Provider)
			}
			found := cat.Search(a.Query, p)
			if found == nil {
				found = []catalog.Service{}
			}
			return catalogSearchResult{Services: found, Count: len(found), PricesAsOf: cat.PricesAsOf()}, nil
		}},
	}
}
