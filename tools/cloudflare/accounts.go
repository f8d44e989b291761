package cloudflare

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

const maxAccountName = 100

// Account is a Cloudflare account the credential may use.
type Account struct {
	ID   string
	Name string
}

// Accounts lists the accounts the client's credential may use (the first
// page Cloudflare returns, up to 20 accounts).
func (c *Client) Accounts(ctx context.Context) ([]Account, error) {
	o := zoneOp{name: "account_list", what: "listing the Cloudflare accounts", needs: "Account Settings Read permission"}
	var list []cf.Account
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		list, _, err = c.api.Accounts(ctx, cf.AccountsListParams{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Account, 0, len(list))
	for _, a := range list {
		if !isAccountID(a.ID) {
			return nil, unreadableAnswer(o, ray, fmt.Errorf("account id %q", a.ID))
		}
		out = append(out, Account{ID: a.ID, Name: sanitize(a.Name)})
	}
	return out, nil
}

// CreateAccount creates a standard account called name. Creating accounts
// through the API is a Cloudflare Tenant (partner) feature: without the
// Tenant entitlement Cloudflare refuses it, and the error says so. The
// POST is sent at most once.
func (c *Client) CreateAccount(ctx context.Context, name string) (Account, error) {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > maxAccountName || !utf8.ValidString(name) ||
		strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Cf) }) >= 0 {
		return Account{}, fault.Newf(fault.InvalidArgument,
			"the account name must be 1 to %d printable characters; nothing was sent.", maxAccountName)
	}
	o := zoneOp{name: "account_create", what: "the creation of Cloudflare account " + quote(name), writes: true,
		needs:   "Tenant entitlement (creating accounts is a Cloudflare partner feature)",
		unknown: "created the account: list the accounts (Accounts) for one named " + quote(name) + " before creating another"}
	var out cf.Account
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		out, err = c.api.CreateAccount(ctx, cf.Account{Name: name, Type: "standard"})
		return err
	})
	if err != nil {
		return Account{}, err
	}
	if !isAccountID(out.ID) {
		return Account{}, unreadableAnswer(o, ray, fmt.Errorf("account id %q", out.ID))
	}
	return Account{ID: out.ID, Name: sanitize(out.Name)}, nil
}

// UserEmail is the e-mail of the person the credential acts for (an OAuth
// token's user), as Cloudflare knows it.
func (c *Client) UserEmail(ctx context.Context) (string, error) {
	o := zoneOp{name: "user_get", what: "reading who signed in at Cloudflare", needs: "the user's e-mail (user details read)"}
	var u cf.User
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		u, err = c.api.UserDetails(ctx)
		return err
	})
	if err != nil {
		return "", err
	}
	email := strings.ToLower(strings.TrimSpace(u.Email))
	if email == "" || !strings.Contains(email, "@") {
		return "", unreadableAnswer(o, ray, fmt.Errorf("user e-mail %q", u.Email))
	}
	return email, nil
}
