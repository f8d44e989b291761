package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/links"
)

// Zones, DNS records, zone settings, API tokens and accounts, through
// cloudflare-go's own methods on the same client as the Registrar calls
// (retries off, redirects refused, every exchange recorded):
//
//	GET    /zones?name=…&account.id=…&per_page=50      ZoneForDomain (ListZonesContext)
//	GET    /zones?account.id=…&per_page=50             ListZones (ListZonesContext)
//	GET    /zones/{zone_id}                            ZoneDetails, before a record write
//	GET    /zones/{zone_id}/dns_records?type=…&name=…  ListDNS, UpsertDNS (ListDNSRecords)
//	POST   /zones/{zone_id}/dns_records                UpsertDNS (CreateDNSRecord)
//	PATCH  /zones/{zone_id}/dns_records/{id}           UpsertDNS (UpdateDNSRecord)
//	DELETE /zones/{zone_id}/dns_records/{id}           DeleteDNS (DeleteDNSRecord)
//	GET    /zones/{zone_id}/settings/{setting}         ConfigureSSL (GetZoneSetting)
//	PATCH  /zones/{zone_id}/settings/{setting}         ConfigureSSL (UpdateZoneSetting)
//	GET    /user/tokens/permission_groups              CreateScopedToken
//	POST   /user/tokens                                CreateScopedToken (CreateAPIToken)
//	GET    /accounts                                   Accounts
//	GET    /user                                       UserEmail (UserDetails)
//
// Every input is checked before anything is sent. A write the SDK sent
// that failed with 5xx, timed out or was answered unreadably is never
// repeated; its error says the request may have reached Cloudflare and
// what may have changed.

// Zone is a Cloudflare zone.
type Zone struct {
	ID     string
	Name   domainname.Name
	Status string // active, pending, initializing, moved, deleted or deactivated
	RayID  string
}

// ZoneForDomain finds the zone of name in the client's account. A domain
// without a zone there is an error with code fault.NotFound.
func (c *Client) ZoneForDomain(ctx context.Context, name domainname.Name) (Zone, error) {
	if err := checkName(name); err != nil {
		return Zone{}, err
	}
	o := zoneOp{name: "zone_lookup", what: "the zone lookup of " + string(name), needs: "Zone Read permission"}
	var res cf.ZonesResponse
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		// The SDK sends an IDN zone's name in Unicode; the answer is
		// compared below in A-labels.
		res, err = c.api.ListZonesContext(ctx, cf.WithZoneFilters(string(name), c.account, ""))
		return err
	})
	if err != nil {
		return Zone{}, err
	}
	for _, z := range res.Result {
		n, perr := domainname.Parse(z.Name)
		if perr != nil || n != name || (z.Account.ID != "" && z.Account.ID != c.account) {
			continue // not an exact match, or another account's
		}
		if !isObjectID(z.ID) {
			return Zone{}, unreadableAnswer(o, ray, fmt.Errorf("zone id %q", z.ID))
		}
		return Zone{ID: z.ID, Name: name, Status: sanitize(z.Status), RayID: ray}, nil
	}
	return Zone{}, fault.Wrap(&CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true}, fault.NotFound, fmt.Sprintf(
		"Cloudflare has no zone for %s in this account; nothing was changed. Register the domain (domain_register) or add it to the account first.", name))
}

// ListZones lists every zone of the client's account (for recording what
// a human owns when they link the account).
func (c *Client) ListZones(ctx context.Context) ([]Zone, error) {
	o := zoneOp{name: "zone_list", what: "listing the account's zones", needs: "Zone Read permission"}
	var res cf.ZonesResponse
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		res, err = c.api.ListZonesContext(ctx, cf.WithZoneFilters("", c.account, ""))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Zone, 0, len(res.Result))
	for _, z := range res.Result {
		n, perr := domainname.Parse(z.Name)
		if perr != nil || (z.Account.ID != "" && z.Account.ID != c.account) {
			continue // a name tollgate does not act on, or another account's
		}
		if !isObjectID(z.ID) {
			return nil, unreadableAnswer(o, ray, fmt.Errorf("zone id %q", z.ID))
		}
		out = append(out, Zone{ID: z.ID, Name: n, Status: sanitize(z.Status), RayID: ray})
	}
	return out, nil
}

// AccountZones lists the account's zones as tollgate records what a
// human's linked account holds (links.Store).
func (c *Client) AccountZones(ctx context.Context) ([]links.ZoneRef, error) {
	zones, err := c.ListZones(ctx)
	if err != nil {
		return nil, err
	}
	refs := make([]links.ZoneRef, 0, len(zones))
	for _, z := range zones {
		refs = append(refs, links.ZoneRef{Name: z.Name, ID: z.ID, AccountID: c.account})
	}
	return refs, nil
}

// zoneName reads the name of zoneID, which the record name checks need.
func (c *Client) zoneName(ctx context.Context, zoneID string) (domainname.Name, error) {
	o := zoneOp{name: "zone_get", what: "reading zone " + zoneID, needs: "Zone Read permission",
		notFound: "Cloudflare has no zone " + zoneID + " in this account; nothing was changed."}
	var z cf.Zone
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		z, err = c.api.ZoneDetails(ctx, zoneID)
		return err
	})
	if err != nil {
		return "", err
	}
	n, perr := domainname.Parse(z.Name)
	if perr != nil || z.ID != zoneID {
		return "", unreadableAnswer(o, ray, fmt.Errorf("zone %q named %q", z.ID, z.Name))
	}
	return n, nil
}

// isObjectID accepts a Cloudflare object id (zone, record, token): 32
// lowercase hex digits, like an account id. Ids go into URL paths
// unescaped by the SDK, so this check keeps "../" out of them.
func isObjectID(s string) bool { return isAccountID(s) }

func checkZoneID(zoneID string) error {
	if !isObjectID(zoneID) {
		return fault.Newf(fault.InvalidArgument,
			"%s is not a Cloudflare zone id (32 lowercase hexadecimal digits); nothing was sent.", quote(zoneID))
	}
	return nil
}

// zoneOp describes a call for error messages.
type zoneOp struct {
	name string // zone_lookup, dns_upsert, ssl_configure, token_create, …
	what string // "the creation of DNS record A www.shop.com"
	// writes is true for a call that changes something at Cloudflare.
	writes bool
	// unknown, for a write, finishes "The request may have reached
	// Cloudflare and …": what may have changed and what to do first.
	unknown string
	// needs names what the credential needs for the call ("DNS Write
	// permission"), for a 403.
	needs string
	// notFound is the public message for a 404; "" makes a 404 a refusal.
	notFound string
}

// mayHaveChanged is said of every write whose outcome is unknown.
func (o zoneOp) mayHaveChanged() string {
	return "The request may have reached Cloudflare and " + o.unknown + ". Nothing was charged."
}

func (o zoneOp) opName() string { return o.name }
func (o zoneOp) noAnswer(ctx context.Context, c *Client, ce *CallError) error {
	return c.callNoAnswer(ctx, o.what, o.writes, o.mayHaveChanged(), ce)
}
func (o zoneOp) badStatus(ce *CallError, retryAfter string) error {
	return zoneBadStatus(o, ce, retryAfter)
}
func (o zoneOp) unreadable(ce *CallError) error { return zoneUnreadable(o, ce) }

// callNoAnswer is the error for a Workers or zone call that got no usable
// answer: whether it may have reached Cloudflare, and for a write what may
// have changed.
func (c *Client) callNoAnswer(ctx context.Context, what string, writes bool, mayHaveChanged string, ce *CallError) error {
	why := "the connection failed"
	switch {
	case !ce.Reached && ce.Err != nil && strings.Contains(ce.Err.Error(), "request rate limiting"):
		why = "tollgate's own request rate limit to Cloudflare was full"
	case errors.Is(ce.Err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = "no answer within " + c.timeout.String()
	case errors.Is(ce.Err, context.Canceled):
		why = "the call was cancelled"
	}
	switch {
	case !ce.Reached:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare was not reached for %s (%s); nothing was sent or changed. Retry later.", what, why))
	case writes:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf("Cloudflare did not answer %s (%s). %s", what, why, mayHaveChanged))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Cloudflare did not answer %s (%s); nothing was changed. Retry later.", what, why))
}

func zoneBadStatus(o zoneOp, ce *CallError, retryAfter string) error {
	said := providerSaid(ce)
	switch s := ce.HTTPStatus; {
	case s >= 500 && o.writes:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf("Cloudflare failed %s with HTTP %d%s. %s", o.what, s, said, o.mayHaveChanged()))
	case s >= 500:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare failed %s with HTTP %d%s; nothing was changed. Retry later.", o.what, s, said))
	case s == http.StatusTooManyRequests:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare is rate-limiting tollgate (HTTP 429) for %s; nothing was changed. Retry after %s.", o.what, retryWait(retryAfter)))
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused the linked account's credential for %s (HTTP %d%s); nothing was changed. "+
				"The human may need to allow tollgate the %s when linking the account again (account_connect).", o.what, s, said, o.needs))
	case s == http.StatusNotFound && o.notFound != "":
		return fault.Wrap(ce, fault.NotFound, o.notFound)
	case s >= 400:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused %s (HTTP %d%s); nothing was changed.", o.what, s, said))
	}
	return zoneUnreadable(o, ce)
}

func zoneUnreadable(o zoneOp, ce *CallError) error {
	if o.writes {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare's answer to %s could not be read (HTTP %d). %s", o.what, ce.HTTPStatus, o.mayHaveChanged()))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Cloudflare's answer to %s could not be read (HTTP %d); nothing was changed. Retry later.", o.what, ce.HTTPStatus))
}

// unreadableAnswer reports a 2xx answer whose content does not make sense.
func unreadableAnswer(o zoneOp, ray string, err error) error {
	return zoneUnreadable(o, &CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true, Err: err})
}
