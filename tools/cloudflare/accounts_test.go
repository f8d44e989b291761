package cloudflare

import (
	"context"
	"net/http"
	"testing"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
)

func TestAccountsSeenByTheCredential(t *testing.T) {
	f, c := setup(t, cffake.Config{Accounts: []cffake.Account{{Name: "Ada's Account", Email: "ada@example.com"}}})
	ctx := context.Background()
	list, err := c.Accounts(ctx)
	if err != nil || len(list) != 1 || list[0].ID != f.AccountID() {
		t.Fatalf("Accounts %+v, %v; the server's token sees only its own account", list, err)
	}
	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/accounts" {
		t.Fatalf("requests %+v", reqs)
	}
	allFromServer(t, f)
}
