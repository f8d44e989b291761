package cloudflare

import (
	"context"
	"fmt"
	"strings"

	cf "github.com/cloudflare/cloudflare-go"
)

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
