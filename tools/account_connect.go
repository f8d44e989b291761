package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// LinkStripeEmail is the e-mail Stripe holds for the principal's customer,
// recorded when billing setup completes: the identity step of account
// connection (SPEC §11: Stripe vouches for the human's e-mail).
const LinkStripeEmail = "stripe_email"

// AccountNotLinked: the authentication gate was passed but no account came
// back from Cloudflare's consent page.
const AccountNotLinked fault.Code = "account_not_linked"

// AccountDirectory is what Cloudflare tells tollgate's OAuth client about
// accounts, and how it creates one for a human (tools/cloudflare.Directory).
type AccountDirectory interface {
	// AccountExists reports whether Cloudflare has an account for email.
	AccountExists(ctx context.Context, email string) (bool, error)
	// Terms are the terms the human accepts before an account is made.
	Terms(ctx context.Context) (url, version string, err error)
	// CreateAccount makes an account for email, the terms of version
	// accepted, and returns its credential.
	CreateAccount(ctx context.Context, email, name, version string) (links.CloudflareLink, error)
}

// AccountLinks is the links store as account_connect uses it.
type AccountLinks interface {
	Get(ctx context.Context, principal, field string) (string, error)
	LinkCloudflare(ctx context.Context, principal string, link links.CloudflareLink, zones []links.ZoneRef) error
	SetZones(ctx context.Context, principal, account string, zones []links.ZoneRef) error
}

// AccountConfig configures account_connect.
type AccountConfig struct {
	Links     AccountLinks
	Directory AccountDirectory // nil: accounts are only linked, never created
	Tenancy   Tenancy          // the linked account, to record its zones again
	Consents  ConsentStore
}

// AuthenticationMessage is what the authentication gate shows the human.
const AuthenticationMessage = "Link your Cloudflare account: sign in at Cloudflare and allow tollgate access. Open the link, sign in as yourself, and choose Continue to Cloudflare. The credential stays on the server; the agent never sees it."

type accountArgs struct {
	gated
	Create *bool `json:"create,omitempty" jsonschema:"leave out: tollgate asks Cloudflare whether the e-mail Stripe verified has an account and links it, or creates one. true forces creation, false forces linking"`
}

// actedIn names the account for the call's audit entry: account_connect
// resolves the account itself, not through the guard.
func (r accountResult) actedIn() string { return r.AccountID }

type accountResult struct {
	Status    string `json:"status" jsonschema:"linked (already or now) or created"`
	AccountID string `json:"account_id"`
	Email     string `json:"email" jsonschema:"the e-mail Stripe verified at billing setup, which the account belongs to"`
	Zones     int    `json:"zones" jsonschema:"how many zones of the account tollgate now knows (the zone tools act on these)"`
}

// AccountConnect connects the principal's own Cloudflare account, starting
// from the e-mail Stripe verified at billing setup: an existing account is
// linked by OAuth consent (an authentication URL gate whose flow lives in
// web/flows); for an e-mail without one, an account is created after the
// terms gate. Called again once linked, it records the account's zones
// again. The credential is never returned.
func AccountConnect(cfg AccountConfig) Tool {
	// state is the linked account (nil for none), or else the e-mail the
	// link starts from.
	state := func(ctx context.Context, principal string) (email string, linked *Tenant, err error) {
		// Linked means a credential that works: one that was revoked or
		// can no longer be renewed is linked again, like none at all.
		switch t, err := cfg.Tenancy.Resolve(ctx, principal, ""); fault.CodeOf(err) {
		case fault.AccountRequired, fault.AccountRelinkRequired:
		default:
			if err != nil {
				return "", nil, err
			}
			return "", &t, nil
		}
		if email, err = cfg.Links.Get(ctx, principal, LinkStripeEmail); err != nil {
			return "", nil, err
		}
		if email == "" {
			return "", nil, fault.New(fault.BillingRequired,
				"account_connect starts from the e-mail Stripe verifies when a payment method is added: run billing_setup first, then account_connect. Nothing was changed.")
		}
		return email, nil, nil
	}
	// create decides between creating an account and linking one.
	create := func(ctx context.Context, a accountArgs, email string) (bool, error) {
		if a.Create != nil {
			return *a.Create, nil
		}
		if cfg.Directory == nil {
			return false, nil
		}
		exists, err := cfg.Directory.AccountExists(ctx, email)
		return !exists, err
	}
	return Tool{
		def: mcp.NewTool("account_connect",
			mcp.WithDescription("Connect the human's Cloudflare account to tollgate; every Cloudflare tool then acts in that account, with its own credential. Run billing_setup first: the account is the one of the e-mail Stripe verified. If Cloudflare has an account for that e-mail, the human signs in at Cloudflare and allows access (authentication gate, URL mode); if not, one is created after they accept Cloudflare's terms (terms gate). The credential stays server-side. Called again once connected, it refreshes which zones tollgate knows in the account."),
			mcp.WithInputSchema[accountArgs](),
			mcp.WithOutputSchema[accountResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"account:link"},
		Gates:    []string{string(human.Authentication), string(human.Terms)},
		Provider: "cloudflare",
		// Metered: it reaches Cloudflare and creates approvals.
		Metered: true,
		run: handler[accountArgs, accountResult]{ask_: func(ctx context.Context, c Call[accountArgs], _ *Quote) ([]Ask, error) {
			a, principal := c.Args, c.Principal()
			email, linked, err := state(ctx, principal)
			if err != nil || linked != nil {
				return nil, err
			}
			creating, err := create(ctx, a, email)
			if err != nil {
				return nil, err
			}
			if !creating {
				return []Ask{{Kind: human.Authentication, Message: AuthenticationMessage + " Sign in as " + email + ".",
					Fields: map[string]string{"provider": "cloudflare", "email": email, "what": "link your Cloudflare account (OAuth consent)"}}}, nil
			}
			if cfg.Directory == nil {
				return nil, noCreation(email)
			}
			url, version, err := cfg.Directory.Terms(ctx)
			if err != nil {
				return nil, err
			}
			// SPEC §8: terms, once accepted with this version, are not asked again.
			ok, err := cfg.Consents.Has(ctx, principal, "cloudflare", human.Terms, version)
			if err != nil || ok {
				return nil, err
			}
			msg := fmt.Sprintf("Accept Cloudflare's terms of service (version %s) so that a Cloudflare account is created for %s: %s", version, email, url)
			return []Ask{{Kind: human.Terms, Message: msg,
				Fields:   map[string]string{"provider": "cloudflare", "email": email, "terms_url": url, "version": version},
				Remember: &Consent{Provider: "cloudflare", Version: version}}}, nil
		}, do: func(ctx context.Context, c Call[accountArgs]) (accountResult, error) {
			a, principal := c.Args, c.Principal()
			email, linked, err := state(ctx, principal)
			if err != nil {
				return accountResult{}, err
			}
			if linked != nil {
				return resyncZones(ctx, cfg, principal, *linked)
			}
			creating, err := create(ctx, a, email)
			if err != nil {
				return accountResult{}, provider.AfterCall(err)
			}
			if !creating {
				return accountResult{}, fault.New(AccountNotLinked, "no Cloudflare account came back from Cloudflare's consent page yet: the human has to finish there (Continue to Cloudflare on the approval page). Call account_connect again to ask again. Nothing was changed.")
			}
			if cfg.Directory == nil {
				return accountResult{}, noCreation(email)
			}
			// Cloudflare's terms are read: every refusal from here on says a
			// provider was called.
			_, version, err := cfg.Directory.Terms(ctx)
			if err != nil {
				return accountResult{}, provider.AfterCall(err)
			}
			// The gate passed only with the terms accepted; check again, in
			// case it was an approval of something else.
			ok, err := cfg.Consents.Has(ctx, principal, "cloudflare", human.Terms, version)
			if err != nil {
				return accountResult{}, provider.AfterCall(err)
			}
			if !ok {
				return accountResult{}, provider.AfterCall(fault.New(GateDeclined, "Cloudflare's terms (version "+version+") were not accepted; no account was created."))
			}
			name := email
			if len(name) > 88 {
				name = strings.ToValidUTF8(name[:88], "")
			}
			link, err := cfg.Directory.CreateAccount(ctx, email, name+" (tollgate)", version)
			if err != nil {
				return accountResult{}, provider.AfterCall(err)
			}
			if err := cfg.Links.LinkCloudflare(ctx, principal, link, nil); err != nil {
				return accountResult{}, provider.AfterCall(fault.Wrap(err, fault.Unavailable, "Cloudflare account "+link.AccountID+" was created for "+email+" but could not be recorded; run account_connect again to link it (it now exists)"))
			}
			return accountResult{Status: "created", AccountID: link.AccountID, Email: email}, nil
		}},
	}
}

// resyncZones records again which zones the linked account holds (after a
// registration, or zones the human added at Cloudflare).
func resyncZones(ctx context.Context, cfg AccountConfig, principal string, t Tenant) (accountResult, error) {
	// Cloudflare is asked for the zones: every refusal after it says a
	// provider was called.
	refs, err := t.Cloudflare.AccountZones(ctx)
	if err != nil {
		return accountResult{}, provider.AfterCall(err)
	}
	if err := cfg.Links.SetZones(ctx, principal, t.AccountID, refs); err != nil {
		return accountResult{}, provider.AfterCall(err)
	}
	email, _ := cfg.Links.Get(ctx, principal, LinkStripeEmail)
	return accountResult{Status: "linked", AccountID: t.AccountID, Email: email, Zones: len(refs)}, nil
}

func noCreation(email string) error {
	return fault.Newf(fault.InvalidArgument,
		"this server cannot create Cloudflare accounts: create one at Cloudflare for %s, then run account_connect again (without create) to link it. Nothing was changed.", email)
}
