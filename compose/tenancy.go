package compose

import (
	"context"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// tenancy resolves a principal's own Cloudflare account for the guard
// (tools.Tenancy): the sealed credential and the zone in one Redis read,
// the credential renewed through the OAuth client when it expired, and a
// client acting in that account alone.
type tenancy struct {
	links   *links.Store
	base    *cloudflare.Client
	refresh links.Refresher
}

var (
	_ tools.Tenancy      = (*tenancy)(nil)
	_ tools.ZoneRecorder = (*tenancy)(nil)
)

func (t *tenancy) Resolve(ctx context.Context, principal string, zone domainname.Name) (tools.Tenant, error) {
	ten, err := t.links.Tenant(ctx, principal, zone)
	if err != nil {
		return tools.Tenant{}, err
	}
	return t.resolve(ctx, principal, ten)
}

// Read is the guard's fused read of the link (its first phase), and the
// resolution of the reply.
func (t *tenancy) Read(principal string, zone domainname.Name) (fuse.Step, func(context.Context, any) (tools.Tenant, error)) {
	step, parse := t.links.TenantStep(principal, zone)
	return step, func(ctx context.Context, reply any) (tools.Tenant, error) {
		ten, err := parse(reply)
		if err != nil {
			return tools.Tenant{}, err
		}
		return t.resolve(ctx, principal, ten)
	}
}

func (t *tenancy) resolve(ctx context.Context, principal string, ten links.Tenant) (tools.Tenant, error) {
	src := t.links.TokenSource(ctx, principal, ten, t.refresh)
	// Renew an expired credential now, before anything is held: a
	// credential that cannot be renewed refuses the call here.
	if _, err := src.Token(); err != nil {
		return tools.Tenant{}, err
	}
	c, err := t.base.As(cloudflare.Credential{AccountID: ten.Link.AccountID, Token: src})
	if err != nil {
		return tools.Tenant{}, fault.Wrap(err, fault.AccountRelinkRequired,
			"the stored Cloudflare link is unusable; the human has to link the account again (account_connect). Nothing was sent.")
	}
	out := tools.Tenant{Cloudflare: c, AccountID: ten.Link.AccountID}
	if ten.Zone != nil {
		out.Zone = &cloudflare.Zone{ID: ten.Zone.ID, Name: ten.Zone.Name}
	}
	return out, nil
}

// RecordZoneStep records a zone the principal's account holds (a new
// registration), as a step of the commit's script.
func (t *tenancy) RecordZoneStep(principal string, ten tools.Tenant, z cloudflare.Zone) fuse.Step {
	return t.links.AddZoneStep(principal, links.ZoneRef{Name: z.Name, ID: z.ID, AccountID: ten.AccountID})
}
