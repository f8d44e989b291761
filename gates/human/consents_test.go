package human

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestConsentsPerVersion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	has := func(principal, provider string, kind Kind, version string) bool {
		t.Helper()
		ok, err := f.consents.Has(ctx, principal, provider, kind, version)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	remember := func(principal, provider string, kind Kind, version string) {
		t.Helper()
		if err := f.consents.Remember(ctx, principal, provider, kind, version); err != nil {
			t.Fatal(err)
		}
	}
	if has(alice, "cloudflare", Terms, "2026-01") {
		t.Fatal("consent before any was given")
	}
	remember(alice, "cloudflare", Terms, "2026-01")
	remember(alice, "cloudflare", Terms, "2026-01") // idempotent
	remember(alice, "stripe", Billing, "")

	tests := []struct {
		name            string
		principal, prov string
		kind            Kind
		version         string
		want            bool
	}{
		{"accepted terms version", alice, "cloudflare", Terms, "2026-01", true},
		{"a new terms version asks again", alice, "cloudflare", Terms, "2026-07", false},
		{"an older terms version is not this one", alice, "cloudflare", Terms, "2025-12", false},
		{"terms of another provider", alice, "stripe", Terms, "2026-01", false},
		{"terms accepted by another principal", bob, "cloudflare", Terms, "2026-01", false},
		{"billing setup", alice, "stripe", Billing, "", true},
		{"billing at another provider", alice, "cloudflare", Billing, "", false},
		{"billing of another principal", bob, "stripe", Billing, "", false},
		{"terms version is not a billing setup", alice, "cloudflare", Billing, "2026-01", false},
		{"a version with the separator cannot forge another field", alice, "cloudflare|terms", Terms, "2026-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := f.consents.Has(ctx, tt.principal, tt.prov, tt.kind, tt.version)
			if tt.prov == "cloudflare|terms" {
				wantCode(t, err, fault.InvalidArgument)
				return
			}
			if err != nil || ok != tt.want {
				t.Fatalf("Has = %v, %v; want %v", ok, err, tt.want)
			}
		})
	}
}

// Only terms and billing setup are remembered: a purchase, a production
// change or a cap raise is asked every time.
func TestConsentsRefuseWhatMustAlwaysBeAsked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, k := range []Kind{Purchase, Production, CapRaise, Authentication, "anything"} {
		wantCode(t, f.consents.Remember(ctx, alice, "stripe", k, ""), fault.InvalidArgument)
		ok, err := f.consents.Has(ctx, alice, "stripe", k, "")
		wantCode(t, err, fault.InvalidArgument)
		if ok {
			t.Fatalf("%s reported as remembered", k)
		}
	}
	// Terms need their version: an unversioned acceptance would pass for
	// every future version.
	wantCode(t, f.consents.Remember(ctx, alice, "cloudflare", Terms, ""), fault.InvalidArgument)
	wantCode(t, f.consents.Remember(ctx, "", "cloudflare", Terms, "1"), fault.InvalidArgument)
	wantCode(t, f.consents.Remember(ctx, alice, "Cloud Flare", Terms, "1"), fault.InvalidArgument)
	wantCode(t, f.consents.Remember(ctx, alice, "cloudflare", Terms, "1\n2"), fault.InvalidArgument)
}

func TestKindModes(t *testing.T) {
	url := map[Kind]bool{Authentication: true, Billing: true}
	for _, k := range Kinds() {
		if !k.Valid() || k.URLMode() != url[k] {
			t.Fatalf("%s: valid %v, URL mode %v", k, k.Valid(), k.URLMode())
		}
		if p, ok := ParseKind(string(k)); !ok || p != k {
			t.Fatalf("ParseKind(%q) = %q, %v", k, p, ok)
		}
	}
	if _, ok := ParseKind("wire_transfer"); ok {
		t.Fatal("ParseKind accepted an unknown kind")
	}
}
