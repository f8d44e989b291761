package cloudflare

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// ensureZone adds an active zone to the fake's account.
func ensureZone(t *testing.T, f *cffake.Fake, name string) cffake.Zone {
	t.Helper()
	z, err := f.EnsureZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// allFromServer fails unless every recorded request carried the server's
// token.
func allFromServer(t *testing.T, f *cffake.Fake) {
	t.Helper()
	for _, r := range f.Requests() {
		if r.Auth != "Bearer "+serverToken {
			t.Fatalf("%s %s carried Authorization %q, want the server's token", r.Method, r.Path, r.Auth)
		}
	}
}

// writes counts the recorded POST, PUT, PATCH and DELETE requests.
func writes(f *cffake.Fake) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method != http.MethodGet {
			n++
		}
	}
	return n
}

func TestZoneForDomain(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	z := ensureZone(t, f, "shop.com")

	got, err := c.ZoneForDomain(ctx, name(t, "shop.com"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != z.ID || got.Name != "shop.com" || got.Status != "active" || got.RayID == "" {
		t.Fatalf("zone %+v", got)
	}
	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/zones" || reqs[0].RayID != got.RayID {
		t.Fatalf("requests %+v", reqs)
	}

	// cloudflare-go sends an IDN name in Unicode; the answer still matches.
	idn := ensureZone(t, f, "xn--mnchen-3ya.de")
	if got, err := c.ZoneForDomain(ctx, name(t, "münchen.de")); err != nil || got.ID != idn.ID || got.Name != "xn--mnchen-3ya.de" {
		t.Fatalf("IDN zone %+v, %v", got, err)
	}
	allFromServer(t, f)
}

func TestZoneForDomainNotFound(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	ensureZone(t, f, "shop.com")
	for _, n := range []string{"other.com", "www.shop.com", "shop.co"} {
		_, err := c.ZoneForDomain(ctx, name(t, n))
		wantCode(t, err, fault.NotFound)
		if !strings.Contains(fault.PublicOf(err), "nothing was changed") {
			t.Fatalf("%s: %q", n, fault.PublicOf(err))
		}
	}
}

func TestRegisteredDomainHasAZone(t *testing.T) {
	f, c := setup(t, cffake.Config{StatusPolls: 1})
	ctx := context.Background()
	shop := name(t, "fresh.com")
	if _, err := c.Register(ctx, shop, 1); err != nil {
		t.Fatal(err)
	}
	if st, err := c.RegistrationStatus(ctx, shop); err != nil || !st.Registered() {
		t.Fatalf("status %+v, %v", st, err)
	}
	z, err := c.ZoneForDomain(ctx, shop)
	if err != nil || z.Status != "active" || len(f.Charges()) != 1 {
		t.Fatalf("zone of a registered domain %+v, %v", z, err)
	}
}

func TestZoneForDomainRefusesBeforeSending(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	for _, raw := range []string{"", "Shop.com", "shop.com.", "shop.com/../../accounts", "münchen.de"} {
		_, err := c.ZoneForDomain(context.Background(), domainname.Name(raw))
		wantCode(t, err, domainname.InvalidDomain)
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("fake saw %d requests", n)
	}
}

func TestZoneReadFailures(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.FailNext(1, 500)
	_, err := c.ZoneForDomain(context.Background(), name(t, "shop.com"))
	wantCode(t, err, ProviderError)
	var ce *CallError
	if !errors.As(err, &ce) || ce.HTTPStatus != 500 || ce.RayID == "" || !strings.Contains(fault.PublicOf(err), "nothing was changed") {
		t.Fatalf("500: %+v %q", ce, fault.PublicOf(err))
	}
	if n := len(f.Requests()); n != 1 {
		t.Fatalf("a failed read was sent %d times", n)
	}

	f, c = setup(t, cffake.Config{Token: "the-real-token"})
	_, err = c.ZoneForDomain(context.Background(), name(t, "shop.com"))
	wantCode(t, err, fault.AccountRelinkRequired)
	if msg := fault.PublicOf(err); !strings.Contains(msg, "account_connect") || strings.Contains(msg, serverToken) {
		t.Fatalf("wrong token: %q", msg)
	}
	if n := len(f.Requests()); n != 1 {
		t.Fatalf("fake saw %d requests", n)
	}
}
