package cloudflare

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Limits of CreateScopedToken.
const (
	// MaxTokenLifetime bounds a token's expiry: tokens tollgate mints
	// always expire, and within a year.
	MaxTokenLifetime = 365 * 24 * time.Hour
	// minTokenLifetime keeps a token from expiring before it is delivered.
	minTokenLifetime = time.Minute
	maxTokenName     = 120
	maxTokenZones    = 50
	maxTokenPerms    = 20
	// zoneScope is the scope of permission groups that apply to zones, and
	// the prefix of a resource naming one zone.
	zoneScope = "com.cloudflare.api.account.zone"
)

// Secret is a credential's value. It prints, formats, marshals and logs as
// "[redacted]"; Reveal returns it. Callers must never log it or put it in
// a tool result.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) Reveal() string             { return string(s) }

// TokenRequest describes an API token limited to some zones.
type TokenRequest struct {
	Name    string
	ZoneIDs []string
	// Permissions are zone permission group names as Cloudflare lists
	// them, e.g. "DNS Write", "Zone Read", "Zone Settings Write".
	Permissions []string
	ExpiresAt   time.Time
}

// Token is an API token as created. Value is its secret, which Cloudflare
// shows only once: deliver it to the human or store it as a named
// server-side secret, never in a tool result or a log.
type Token struct {
	ID        string
	Name      string
	Value     Secret
	ExpiresAt time.Time
	RayID     string
}

// CreateScopedToken mints a user API token whose one policy allows the
// named permission groups on exactly the given zones, expiring at
// ExpiresAt. It checks the request before anything is sent, then reads
// the permission groups and refuses names Cloudflare does not list and
// groups that are not zone-scoped (invalid_argument, nothing created). The
// POST is sent at most once.
func (c *Client) CreateScopedToken(ctx context.Context, req TokenRequest) (Token, error) {
	zones, perms, err := req.check(time.Now())
	if err != nil {
		return Token{}, err
	}
	groups, err := c.permissionGroups(ctx)
	if err != nil {
		return Token{}, err
	}
	var ids []cf.APITokenPermissionGroups
	for _, p := range perms {
		g, err := pickGroup(groups, p)
		if err != nil {
			return Token{}, err
		}
		ids = append(ids, cf.APITokenPermissionGroups{ID: g.ID})
	}
	resources := make(map[string]any, len(zones))
	for _, z := range zones {
		resources[zoneScope+"."+z] = "*"
	}
	expires := req.ExpiresAt.UTC().Truncate(time.Second)
	o := zoneOp{name: "token_create", what: "the creation of API token " + quote(req.Name), writes: true,
		needs: "API Tokens Write permission (a user token that may create tokens)",
		unknown: "created the token, whose secret was not received and cannot be shown again: an operator should delete any API token named " +
			quote(req.Name) + " (My Profile > API Tokens) before another is created"}
	var out cf.APIToken
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		out, err = c.api.CreateAPIToken(ctx, cf.APIToken{
			Name:      req.Name,
			ExpiresOn: &expires,
			Policies:  []cf.APITokenPolicies{{Effect: "allow", Resources: resources, PermissionGroups: ids}},
		})
		return err
	})
	if err != nil {
		return Token{}, err
	}
	if !isObjectID(out.ID) || out.Value == "" {
		return Token{}, unreadableAnswer(o, ray, fmt.Errorf("token id %q, value present %v", out.ID, out.Value != ""))
	}
	t := Token{ID: out.ID, Name: req.Name, Value: Secret(out.Value), ExpiresAt: expires, RayID: ray}
	if out.ExpiresOn != nil {
		t.ExpiresAt = out.ExpiresOn.UTC()
	}
	return t, nil
}

// check refuses a request Cloudflare or tollgate would refuse, and returns
// its zones and permissions without repeats.
func (req TokenRequest) check(now time.Time) (zones, perms []string, err error) {
	bad := func(format string, args ...any) ([]string, []string, error) {
		return nil, nil, fault.Newf(fault.InvalidArgument, format+"; nothing was sent.", args...)
	}
	switch n := utf8.RuneCountInString(req.Name); {
	case strings.TrimSpace(req.Name) == "" || n > maxTokenName || !utf8.ValidString(req.Name) ||
		strings.IndexFunc(req.Name, func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Cf) }) >= 0:
		return bad("the token name must be 1 to %d printable characters", maxTokenName)
	case len(req.ZoneIDs) == 0 || len(req.ZoneIDs) > maxTokenZones:
		return bad("a token must be limited to 1 to %d zones", maxTokenZones)
	case len(req.Permissions) == 0 || len(req.Permissions) > maxTokenPerms:
		return bad("a token needs 1 to %d permissions, such as \"DNS Write\"", maxTokenPerms)
	case req.ExpiresAt.IsZero():
		return bad("a token must have an expiry")
	case req.ExpiresAt.Before(now.Add(minTokenLifetime)):
		return bad("the token's expiry %s is in the past or less than a minute away", req.ExpiresAt.UTC().Format(time.RFC3339))
	case req.ExpiresAt.After(now.Add(MaxTokenLifetime)):
		return bad("the token's expiry %s is more than a year away", req.ExpiresAt.UTC().Format(time.RFC3339))
	}
	seen := map[string]bool{}
	for _, z := range req.ZoneIDs {
		if !isObjectID(z) {
			return bad("%s is not a Cloudflare zone id (32 lowercase hexadecimal digits)", quote(z))
		}
		if !seen[z] {
			seen[z] = true
			zones = append(zones, z)
		}
	}
	for _, p := range req.Permissions {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 100 {
			return bad("a permission name is empty or too long")
		}
		if !seen["perm:"+strings.ToLower(p)] {
			seen["perm:"+strings.ToLower(p)] = true
			perms = append(perms, p)
		}
	}
	return zones, perms, nil
}

func (c *Client) permissionGroups(ctx context.Context) ([]cf.APITokenPermissionGroups, error) {
	o := zoneOp{name: "token_permission_groups", what: "listing the API token permission groups",
		needs: "API Tokens Read permission"}
	var groups []cf.APITokenPermissionGroups
	_, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		groups, err = c.api.ListAPITokensPermissionGroups(ctx)
		return err
	})
	return groups, err
}

// pickGroup finds the permission group called name (case aside) and
// refuses one that does not apply to zones.
func pickGroup(groups []cf.APITokenPermissionGroups, name string) (cf.APITokenPermissionGroups, error) {
	var zoneNames []string
	var found *cf.APITokenPermissionGroups
	for i, g := range groups {
		if zoneScoped(g) {
			zoneNames = append(zoneNames, g.Name)
		}
		if found == nil && strings.EqualFold(g.Name, name) || g.Name == name {
			found = &groups[i]
		}
	}
	if found == nil {
		return cf.APITokenPermissionGroups{}, fault.Newf(fault.InvalidArgument,
			"Cloudflare has no permission named %s; zone permissions include %s. No token was created.",
			quote(name), strings.Join(first(zoneNames, 12), ", "))
	}
	if !zoneScoped(*found) || !isObjectID(found.ID) {
		return cf.APITokenPermissionGroups{}, fault.Newf(fault.InvalidArgument,
			"%s is not a zone permission (its scope is %s); tollgate mints tokens limited to the task's zones only. No token was created.",
			quote(found.Name), quote(strings.Join(found.Scopes, " ")))
	}
	return *found, nil
}

func zoneScoped(g cf.APITokenPermissionGroups) bool {
	return len(g.Scopes) == 1 && g.Scopes[0] == zoneScope
}

func first(list []string, n int) []string {
	if len(list) > n {
		return append(list[:n:n], "…")
	}
	return list
}
