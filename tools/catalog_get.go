package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

type catalogGetArgs struct {
	ID string `json:"id" jsonschema:"the service id from catalog_search, e.g. cloudflare/registrar:domain.com"`
}

// CatalogGet returns one catalog service by id.
func CatalogGet(cat *catalog.Catalog) Tool {
	return Tool{
		def: mcp.NewTool("catalog_get",
			mcp.WithDescription("Get one catalog service by id: price (integer minor units, currency, interval), the provisioning tool, required scopes, human gates and configuration schema. Calls no provider."),
			mcp.WithInputSchema[catalogGetArgs](),
			mcp.WithOutputSchema[catalog.Service](),
			annotate(true, false, true, false),
		),
		Scopes: []string{"catalog:read"},
		run: handler[catalogGetArgs, catalog.Service]{do: func(ctx context.Context, c Call[catalogGetArgs]) (catalog.Service, error) {
			a := c.Args
			if a.ID == "" {
				return catalog.Service{}, fault.New(fault.InvalidArgument, "id is required; find one with catalog_search")
			}
			s, err := cat.Get(a.ID)
			if err != nil {
				return catalog.Service{}, err
			}
			return s, nil
		}},
	}
}
