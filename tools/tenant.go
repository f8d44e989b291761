package tools

// Tenancy (SPEC §4.2, §7 step 9): every Cloudflare call of a principal
// acts in that principal's own linked account, with that account's own
// credential, and a zone tool acts only on a zone tollgate knows the
// account holds. Both are decided here, once, before the loop guard,
// idempotency, gates, holds or any provider call: a tool declares
// Account (and Owned), and its handler gets the resolved account in
// Call.Tenant. There is no server-wide Cloudflare credential to fall
// back on.

import (
	"context"
	"fmt"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// Tenancy resolves a principal's own Cloudflare account.
type Tenancy interface {
	// Read is the Redis read of the principal's link (and, when zone is
	// not empty, of that zone) as a step of the guard's first phase, and
	// the function that resolves the reply: a client acting in the linked
	// account with a credential that is valid now (renewed if it had
	// expired), and the zone if the account holds it. No link is
	// fault.AccountRequired; a credential that cannot be renewed is
	// fault.AccountRelinkRequired.
	Read(principal string, zone domainname.Name) (fuse.Step, func(ctx context.Context, reply any) (Tenant, error))
	// Resolve is Read and its resolution in a round trip of its own, for
	// tools that look at the link themselves (account_connect).
	Resolve(ctx context.Context, principal string, zone domainname.Name) (Tenant, error)
}

// Tenant is the principal's Cloudflare account as one call acts in it.
type Tenant struct {
	Cloudflare *cloudflare.Client
	AccountID  string
	// Zone is the call's zone when the tool is Owned.
	Zone *cloudflare.Zone
}

// tenant is step 4b: the principal's own account, and for an Owned tool
// the zone inside it. What another tenant owns is refused exactly like
// what does not exist, so a refusal never tells whether it exists
// elsewhere.
func (p *pipelineCall) tenant(ctx context.Context, target domainname.Name, finish func(context.Context, any) (Tenant, error), reply any) (Tenant, error) {
	t, err := finish(ctx, reply)
	if err != nil {
		return Tenant{}, err
	}
	p.rec.Account = t.AccountID
	if p.t.Owned && t.Zone == nil {
		return Tenant{}, fault.New(fault.ResourceForbidden, fmt.Sprintf(
			"%s is not a zone of your linked Cloudflare account (account %s), so this task may not touch it. "+
				"Register it (domain_register) or, if you added it at Cloudflare yourself, run account_connect again so tollgate sees it. Nothing was held, sent or changed.",
			target, t.AccountID))
	}
	return t, nil
}
