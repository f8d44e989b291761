package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// tokenPosts counts the recorded token creations.
func tokenPosts(f *cffake.Fake) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == http.MethodPost && r.Path == "/user/tokens" {
			n++
		}
	}
	return n
}

func TestCreateScopedToken(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	shop := ensureZone(t, f, "shop.com")
	ensureZone(t, f, "other.com")
	expires := time.Now().Add(24 * time.Hour)

	tok, err := c.CreateScopedToken(context.Background(), TokenRequest{
		Name: "shop.com deploy", ZoneIDs: []string{shop.ID, shop.ID}, Permissions: []string{"DNS Write", "zone read"}, ExpiresAt: expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	minted := f.Tokens()
	if len(minted) != 1 || tok.ID != minted[0].ID || tok.Value.Reveal() != minted[0].Value || tok.Name != "shop.com deploy" ||
		!tok.ExpiresAt.Equal(expires.UTC().Truncate(time.Second)) || tok.RayID == "" {
		t.Fatalf("token %+v, fake minted %+v", tok, minted)
	}

	// The policy names exactly the given zone, with the named permissions.
	m := minted[0]
	dnsWrite, _ := cffake.PermissionGroupID("DNS Write")
	zoneRead, _ := cffake.PermissionGroupID("Zone Read")
	if len(m.Policies) != 1 || m.Policies[0].Effect != "allow" || strings.Join(m.ZoneIDs(), ",") != shop.ID ||
		strings.Join(m.Policies[0].PermissionGroups, ",") != dnsWrite+","+zoneRead || !m.ExpiresOn.Equal(tok.ExpiresAt) {
		t.Fatalf("minted %+v", m)
	}
	reqs := f.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/user/tokens/permission_groups" || reqs[1].Method != http.MethodPost || reqs[1].Path != "/user/tokens" {
		t.Fatalf("requests %+v", reqs)
	}
	var body struct {
		Policies []struct {
			Resources map[string]string `json:"resources"`
		} `json:"policies"`
	}
	if err := json.Unmarshal(reqs[1].Body, &body); err != nil || len(body.Policies) != 1 || len(body.Policies[0].Resources) != 1 ||
		body.Policies[0].Resources["com.cloudflare.api.account.zone."+shop.ID] != "*" {
		t.Fatalf("POST body %s", reqs[1].Body)
	}
	allFromServer(t, f)
}

func TestTokenSecretIsRedacted(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	tok, err := c.CreateScopedToken(context.Background(), TokenRequest{
		Name: "t", ZoneIDs: []string{z.ID}, Permissions: []string{"DNS Write"}, ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := f.Tokens()[0].Value
	j, _ := json.Marshal(tok)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("minted", "token", tok, "value", tok.Value)
	for _, shown := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), fmt.Sprintf("%s|%q|%x", tok.Value, tok.Value, tok.Value),
		string(j), logs.String(),
	} {
		if strings.Contains(shown, secret) || !strings.Contains(shown, "redacted") {
			t.Fatalf("the secret shows: %s", shown)
		}
	}
	if tok.Value.Reveal() != secret {
		t.Fatal("Reveal does not return the secret")
	}
}

func TestTokenPermissionsRefused(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	for _, perms := range [][]string{{"DNS Admin"}, {"DNS Write", "Workers Scripts Write"}, {"Account Settings Read"}} {
		_, err := c.CreateScopedToken(context.Background(), TokenRequest{
			Name: "t", ZoneIDs: []string{z.ID}, Permissions: perms, ExpiresAt: time.Now().Add(time.Hour),
		})
		wantCode(t, err, fault.InvalidArgument)
		if !strings.Contains(fault.PublicOf(err), "No token was created") {
			t.Fatalf("%v: %q", perms, fault.PublicOf(err))
		}
	}
	if n := tokenPosts(f); n != 0 || len(f.Tokens()) != 0 {
		t.Fatalf("%d token POSTs", n)
	}
}

func TestTokenRequestRefusedBeforeSending(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	soon := time.Now().Add(time.Hour)
	ok := TokenRequest{Name: "t", ZoneIDs: []string{z.ID}, Permissions: []string{"DNS Write"}, ExpiresAt: soon}
	tests := []struct {
		name string
		mod  func(*TokenRequest)
	}{
		{"no zones", func(r *TokenRequest) { r.ZoneIDs = nil }},
		{"a zone name for an id", func(r *TokenRequest) { r.ZoneIDs = []string{"shop.com"} }},
		{"every zone", func(r *TokenRequest) { r.ZoneIDs = []string{"*"} }},
		{"51 zones", func(r *TokenRequest) { r.ZoneIDs = make([]string, 51) }},
		{"no permissions", func(r *TokenRequest) { r.Permissions = nil }},
		{"an empty permission", func(r *TokenRequest) { r.Permissions = []string{" "} }},
		{"no expiry", func(r *TokenRequest) { r.ExpiresAt = time.Time{} }},
		{"expired", func(r *TokenRequest) { r.ExpiresAt = time.Now().Add(-time.Minute) }},
		{"expires within a minute", func(r *TokenRequest) { r.ExpiresAt = time.Now().Add(30 * time.Second) }},
		{"expires after a year", func(r *TokenRequest) { r.ExpiresAt = time.Now().Add(MaxTokenLifetime + time.Hour) }},
		{"no name", func(r *TokenRequest) { r.Name = " " }},
		{"name with a newline", func(r *TokenRequest) { r.Name = "a\nb" }},
		{"name of 121 characters", func(r *TokenRequest) { r.Name = strings.Repeat("n", 121) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.mod(&req)
			_, err := c.CreateScopedToken(context.Background(), req)
			wantCode(t, err, fault.InvalidArgument)
			if !strings.Contains(fault.PublicOf(err), "nothing was sent") {
				t.Fatalf("message %q", fault.PublicOf(err))
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("fake saw %d requests", n)
	}
}

func TestTokenCreationIsNotRetried(t *testing.T) {
	for _, status := range []int{500, 502} {
		f, c := setup(t, cffake.Config{})
		z := ensureZone(t, f, "shop.com")
		f.FailWrites(1, status)
		_, err := c.CreateScopedToken(context.Background(), TokenRequest{
			Name: "shop deploy", ZoneIDs: []string{z.ID}, Permissions: []string{"DNS Write"}, ExpiresAt: time.Now().Add(time.Hour),
		})
		mayHaveReached(t, err, status, "token_create", `delete any API token named "shop deploy"`)
		if n := tokenPosts(f); n != 1 || len(f.Tokens()) != 0 {
			t.Fatalf("HTTP %d: %d token POSTs, want exactly 1", status, n)
		}
	}
}

func TestTokenForAZoneOfAnotherAccount(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	_, err := c.CreateScopedToken(context.Background(), TokenRequest{
		Name: "t", ZoneIDs: []string{"ffffffffffffffffffffffffffffffff"}, Permissions: []string{"DNS Write"}, ExpiresAt: time.Now().Add(time.Hour),
	})
	wantCode(t, err, ProviderRefused)
	if !strings.Contains(fault.PublicOf(err), "nothing was changed") || len(f.Tokens()) != 0 {
		t.Fatalf("message %q", fault.PublicOf(err))
	}
}
