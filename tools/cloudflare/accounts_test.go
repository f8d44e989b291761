package cloudflare

import (
	"context"
	"net/http"
	"strings"
	"testing"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestAccountsAndCreation(t *testing.T) {
	f, c := setup(t, cffake.Config{Accounts: []cffake.Account{{Name: "Ada's Account", Email: "ada@example.com"}}})
	ctx := context.Background()
	list, err := c.Accounts(ctx)
	if err != nil || len(list) != 1 || list[0].ID != f.AccountID() {
		t.Fatalf("Accounts %+v, %v; the server's token sees only its own account", list, err)
	}
	a, err := c.CreateAccount(ctx, "Ada's projects")
	if err != nil || !isAccountID(a.ID) || a.Name != "Ada's projects" {
		t.Fatalf("CreateAccount %+v, %v", a, err)
	}
	if list, err = c.Accounts(ctx); err != nil || len(list) != 2 || list[1] != a {
		t.Fatalf("after creation %+v, %v", list, err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[1].Method != http.MethodPost || reqs[1].Path != "/accounts" || !strings.Contains(string(reqs[1].Body), `"type":"standard"`) {
		t.Fatalf("requests %+v", reqs)
	}
	allFromServer(t, f)
}

func TestAccountCreationRefused(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	f.RefuseAccountCreation(true)
	_, err := c.CreateAccount(ctx, "Ada's projects")
	wantCode(t, err, ProviderRefused)
	if msg := fault.PublicOf(err); !strings.Contains(msg, "Tenant entitlement") || !strings.Contains(msg, "nothing was changed") {
		t.Fatalf("message %q", msg)
	}

	for _, bad := range []string{"", " ", strings.Repeat("n", 101), "a\u202eb", "a\x00b"} {
		_, err := c.CreateAccount(ctx, bad)
		wantCode(t, err, fault.InvalidArgument)
	}
	if n := len(f.Requests()); n != 1 {
		t.Fatalf("fake saw %d requests, want only the refused POST", n)
	}
}

func TestAccountCreationIsNotRetried(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.FailWrites(1, 500)
	_, err := c.CreateAccount(context.Background(), "Ada's projects")
	mayHaveReached(t, err, 500, "account_create", "created the account")
	if n := writes(f); n != 1 || len(f.Accounts()) != 1 {
		t.Fatalf("%d POSTs, want exactly 1", n)
	}
}
