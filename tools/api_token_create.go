package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// SecretStore keeps named secrets server-side, sealed, per principal.
type SecretStore interface {
	HasSecret(ctx context.Context, principal, name string) (bool, error)
	// AddSecret never replaces a stored secret (links.SecretExists).
	AddSecret(ctx context.Context, principal, name, value string) error
}

type apiTokenArgs struct {
	Zone        string      `json:"zone" jsonschema:"the zone (domain) the token may act on; it must be one this task's token names"`
	Permissions []string    `json:"permissions" jsonschema:"zone permission groups, e.g. DNS Write, Zone Read"`
	ExpiresIn   json.Number `json:"expires_in,omitempty" jsonschema:"seconds until the token expires: 3600 to 31536000 (default 30 days)"`
	Name        string      `json:"name,omitempty" jsonschema:"the name the secret is stored under (letters, digits, - and _); default cf-<zone>"`
}

type apiTokenResult struct {
	TokenID        string    `json:"token_id"`
	Zone           string    `json:"zone"`
	Permissions    []string  `json:"permissions"`
	ExpiresAt      time.Time `json:"expires_at"`
	SecretStoredAs string    `json:"secret_stored_as" jsonschema:"the token's secret is kept server-side under this name; it is never returned to an agent"`
}

var secretName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// APITokenCreate mints a Cloudflare API token limited to one zone of the
// task and the listed permissions, with an expiry; its secret is stored
// server-side under a name and never shown to the agent.
func APITokenCreate(secrets SecretStore, now func() time.Time) Tool {
	return Tool{
		def: mcp.NewTool("api_token_create",
			mcp.WithDescription("Create a Cloudflare API token, in the human's linked Cloudflare account, limited to one zone of that account this task's token names and to the listed permissions, with an expiry. The token's secret is stored server-side under a name (secret_stored_as) for the human; it is never returned to the agent or written to a log."),
			mcp.WithInputSchema[apiTokenArgs](),
			mcp.WithOutputSchema[apiTokenResult](),
			annotate(false, false, false, true),
		),
		Scopes: []string{"token:create"}, Provider: "cloudflare", Metered: true, Creating: true, Target: "zone", Account: true, Owned: true,
		args: map[string]ArgRule{"expires_in": intRule(3600, 31536000), "permissions": {MinItems: 1}},
		run: handler[apiTokenArgs, apiTokenResult]{do: func(ctx context.Context, c Call[apiTokenArgs]) (apiTokenResult, error) {
			a := c.Args
			ttl := 30 * 24 * time.Hour
			if a.ExpiresIn != "" {
				n, err := a.ExpiresIn.Int64()
				if err != nil || n < 3600 || n > 365*24*3600 {
					return apiTokenResult{}, fault.Newf(fault.InvalidArgument, "expires_in must be whole seconds from 3600 to 31536000, got %s; nothing was created", a.ExpiresIn)
				}
				ttl = time.Duration(n) * time.Second
			}
			name := c.Target
			store := a.Name
			if store == "" {
				store = "cf-" + string(name)
				store = regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(store, "-")
			}
			if !secretName.MatchString(store) {
				return apiTokenResult{}, fault.Newf(fault.InvalidArgument, "name %q: use 1-64 letters, digits, - or _; nothing was created", a.Name)
			}
			cf, zone, err := c.Tenant.zone()
			if err != nil {
				return apiTokenResult{}, err
			}
			// A stored secret is never replaced: another task's token
			// would be lost while still live at Cloudflare.
			if taken, err := secrets.HasSecret(ctx, c.Principal(), store); err != nil || taken {
				if err == nil {
					err = fault.Newf(links.SecretExists, "a secret named %q is already stored for this human; choose another name. Nothing was created.", store)
				}
				return apiTokenResult{}, err
			}
			tok, err := cf.CreateScopedToken(ctx, cloudflare.TokenRequest{
				Name: fmt.Sprintf("tollgate %s %s", zone.Name, now().UTC().Format("2006-01-02T15:04")), ZoneIDs: []string{zone.ID},
				Permissions: a.Permissions, ExpiresAt: now().Add(ttl),
			})
			if err != nil {
				return apiTokenResult{}, err
			}
			if err := secrets.AddSecret(ctx, c.Principal(), store, tok.Value.Reveal()); err != nil {
				return apiTokenResult{}, provider.AfterCall(fault.Wrap(err, fault.CodeOf(err), fmt.Sprintf(
					"Cloudflare created token %s but its secret could not be stored (%s); revoke it in the Cloudflare dashboard and retry", tok.ID, fault.PublicOf(err))))
			}
			return apiTokenResult{TokenID: tok.ID, Zone: string(zone.Name), Permissions: a.Permissions, ExpiresAt: tok.ExpiresAt.UTC(), SecretStoredAs: store}, nil
		}},
	}
}
