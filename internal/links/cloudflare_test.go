package links

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

const (
	alice   = "user:alice@example.com"
	acctA   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	acctB   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	zoneID1 = "11111111111111111111111111111111"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { rdb.Close() })
	s, err := New(rdb, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func live(access, refresh string) *oauth2.Token {
	return &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "bearer", Expiry: time.Now().Add(time.Hour)}
}

func expired(access, refresh string) *oauth2.Token {
	return &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "bearer", Expiry: time.Now().Add(-time.Minute)}
}

func TestNoLinkIsAccountRequired(t *testing.T) {
	s := newStore(t)
	_, err := s.Tenant(context.Background(), alice, "shop.example")
	if fault.CodeOf(err) != fault.AccountRequired || !strings.Contains(fault.PublicOf(err), "account_connect") {
		t.Fatalf("%v", err)
	}
}

func TestLinkIsSealedAndReadWithItsZones(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("access-1", "refresh-1")},
		[]ZoneRef{{Name: "shop.example", ID: zoneID1}})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := s.rdb.HGetAll(ctx, s.key(alice)).Result()
	for f, v := range all {
		if strings.Contains(v, "access-1") || strings.Contains(v, "refresh-1") {
			t.Fatalf("field %s holds the token in the clear", f)
		}
	}
	tn, err := s.Tenant(ctx, alice, "shop.example")
	if err != nil || tn.Link.AccountID != acctA || tn.Link.Token.AccessToken != "access-1" || tn.Zone == nil || tn.Zone.ID != zoneID1 {
		t.Fatalf("%+v %v", tn, err)
	}
	tn, err = s.Tenant(ctx, alice, "other.example")
	if err != nil || tn.Zone != nil {
		t.Fatalf("a zone the account does not hold: %+v %v", tn.Zone, err)
	}
	// Linking another account forgets the first account's zones.
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctB, Token: live("access-2", "")}, nil); err != nil {
		t.Fatal(err)
	}
	if tn, _ := s.Tenant(ctx, alice, "shop.example"); tn.Zone != nil {
		t.Fatalf("a zone of the earlier account is still known: %+v", tn.Zone)
	}
	// AddZoneStep records a zone as a step of the commit's script: nothing
	// for an account that is not the linked one, and it goes on either way.
	for _, c := range []struct {
		ref  ZoneRef
		want int64
	}{
		{ZoneRef{Name: "shop.example", ID: zoneID1, AccountID: acctA}, 0},
		{ZoneRef{Name: "new.example", ID: zoneID1, AccountID: acctB}, 1},
	} {
		if c.want == 0 {
			if err := s.AddZone(ctx, alice, c.ref); fault.CodeOf(err) != fault.ResourceForbidden {
				t.Fatalf("AddZone recorded a zone of another account: %v", err)
			}
		}
		res, err := fuse.Run(ctx, s.rdb, s.AddZoneStep(alice, c.ref))
		if err != nil || res.Stopped != -1 || len(res.Replies) != 1 || res.Replies[0] != c.want {
			t.Fatalf("AddZoneStep %s: %+v %v, want reply %d", c.ref.Name, res, err, c.want)
		}
	}
	zones, err := s.Zones(ctx, alice)
	if err != nil || len(zones) != 1 || zones[0].Name != "new.example" {
		t.Fatalf("zones %+v %v", zones, err)
	}
}

// A named secret (api_token_create's name argument) can never replace the
// account credential, nor can plain fields forge a zone.
func TestNamedSecretCannotReplaceTheCredential(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("access-1", "")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cloudflare", "cloudflare_oauth", "cred:cloudflare"} {
		_ = s.AddSecret(ctx, alice, name, "minted-token-value")
	}
	tn, err := s.Tenant(ctx, alice, "")
	if err != nil || tn.Link.Token.AccessToken != "access-1" {
		t.Fatalf("credential replaced: %+v %v", tn, err)
	}
	for _, f := range []string{"zone:victim.example", "cred:cloudflare", "cloudflare_account"} {
		if err := s.Set(ctx, alice, map[string]string{f: acctA + " " + zoneID1}); err == nil {
			t.Fatalf("Set wrote %s", f)
		}
	}
}

// rotating is a provider whose refresh tokens can each be used once.
type rotating struct {
	mu    sync.Mutex
	spent map[string]bool
	n     int
	calls int
}

func (r *rotating) Refresh(_ context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.spent[old.RefreshToken] {
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "refresh token already used"}
	}
	r.spent[old.RefreshToken] = true
	r.n++
	time.Sleep(20 * time.Millisecond)
	return live(fmt.Sprintf("access-%d", r.n+1), fmt.Sprintf("refresh-%d", r.n+1)), nil
}

func TestExpiredTokenIsRefreshedAndWrittenBack(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	r := &rotating{spent: map[string]bool{}}
	tn, _ := s.Tenant(ctx, alice, "")
	tok, err := s.TokenSource(ctx, alice, tn, r).Token()
	if err != nil || tok.AccessToken != "access-2" {
		t.Fatalf("%+v %v", tok, err)
	}
	tn, _ = s.Tenant(ctx, alice, "")
	if tn.Link.Token.AccessToken != "access-2" || tn.Link.Token.RefreshToken != "refresh-2" {
		t.Fatalf("not written back: %+v", tn.Link.Token)
	}
}

// Two replicas find the token expired at once: one refreshes, the other
// uses what it wrote; the rotated refresh token is never spent twice and
// the newer token is never lost.
func TestConcurrentRefreshKeepsTheNewerToken(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	r := &rotating{spent: map[string]bool{}}
	const replicas = 8
	got := make([]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		tn, err := s.Tenant(ctx, alice, "")
		if err != nil {
			t.Fatal(err)
		}
		src := s.TokenSource(ctx, alice, tn, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.Token()
			errs[i] = err
			if tok != nil {
				got[i] = tok.AccessToken
			}
		}()
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil || got[i] != "access-2" {
			t.Fatalf("replica %d: %q %v", i, got[i], errs[i])
		}
	}
	if r.calls != 1 {
		t.Fatalf("%d refreshes for one expiry", r.calls)
	}
	tn, _ := s.Tenant(ctx, alice, "")
	if tn.Link.Token.RefreshToken != "refresh-2" {
		t.Fatalf("stored %+v", tn.Link.Token)
	}
}

func TestFailedRefreshIsRelinkAndWritesNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	r := &rotating{spent: map[string]bool{"refresh-1": true}} // revoked at the provider
	before, _ := s.rdb.HGet(ctx, s.key(alice), credField).Result()
	tn, _ := s.Tenant(ctx, alice, "")
	_, err := s.TokenSource(ctx, alice, tn, r).Token()
	if fault.CodeOf(err) != fault.AccountRelinkRequired {
		t.Fatalf("%v", err)
	}
	after, _ := s.rdb.HGet(ctx, s.key(alice), credField).Result()
	if before != after {
		t.Fatal("a failed refresh wrote the credential")
	}
	// Refused for good: the next calls fail at once, without asking the
	// provider again (an agent retrying must not hammer it)...
	calls := r.calls
	for range 3 {
		if _, err := s.Tenant(ctx, alice, ""); fault.CodeOf(err) != fault.AccountRelinkRequired {
			t.Fatalf("after a refused refresh: %v", err)
		}
	}
	if r.calls != calls {
		t.Fatalf("the provider was asked %d more times", r.calls-calls)
	}
	// ...until the human links the account again.
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("relinked", "r")}, nil); err != nil {
		t.Fatal(err)
	}
	if tn, err := s.Tenant(ctx, alice, ""); err != nil || tn.Link.Token.AccessToken != "relinked" {
		t.Fatalf("after relinking: %+v %v", tn, err)
	}
	// A refresh that got no answer is not remembered as refused.
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-x")}, nil); err != nil {
		t.Fatal(err)
	}
	tn, _ = s.Tenant(ctx, alice, "")
	down := refreshFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		return nil, errors.New("connection refused")
	})
	if _, err := s.TokenSource(ctx, alice, tn, down).Token(); fault.CodeOf(err) != fault.AccountRelinkRequired {
		t.Fatalf("%v", err)
	}
	if _, err := s.Tenant(ctx, alice, ""); err != nil {
		t.Fatalf("a refresh without an answer marked the credential dead: %v", err)
	}
	// Without a refresh token an expired credential cannot be renewed.
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "")}, nil); err != nil {
		t.Fatal(err)
	}
	tn, _ = s.Tenant(ctx, alice, "")
	if _, err := s.TokenSource(ctx, alice, tn, r).Token(); fault.CodeOf(err) != fault.AccountRelinkRequired {
		t.Fatalf("%v", err)
	}
}

// A relink while a refresh runs is never overwritten by the refresh.
func TestRefreshNeverOverwritesARelink(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	tn, _ := s.Tenant(ctx, alice, "")
	relinker := refreshFunc(func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
		if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("relinked", "relinked-r")}, nil); err != nil {
			return nil, err
		}
		return live("refreshed", "refreshed-r"), nil
	})
	if _, err := s.TokenSource(ctx, alice, tn, relinker).Token(); err == nil {
		t.Fatal("a refresh raced by a relink reported success")
	}
	tn, _ = s.Tenant(ctx, alice, "")
	if tn.Link.Token.AccessToken != "relinked" {
		t.Fatalf("the relink was overwritten: %+v", tn.Link.Token)
	}
}

type refreshFunc func(context.Context, *oauth2.Token) (*oauth2.Token, error)

func (f refreshFunc) Refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	return f(ctx, old)
}

// A token the provider refused before its expiry (revoked, or expired
// early) is renewed on the next use.
func TestInvalidatedTokenIsRenewed(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	r := &rotating{spent: map[string]bool{}}
	tn, _ := s.Tenant(ctx, alice, "")
	src := s.TokenSource(ctx, alice, tn, r)
	if tok, err := src.Token(); err != nil || tok.AccessToken != "access-1" || r.calls != 0 {
		t.Fatalf("a live token was refreshed: %+v %v", tok, err)
	}
	src.(interface{ Invalidate() }).Invalidate()
	if tok, err := src.Token(); err != nil || tok.AccessToken != "access-2" || r.calls != 1 {
		t.Fatalf("a refused token was not renewed: %+v %v (%d refreshes)", tok, err, r.calls)
	}
}

// A renewal that got no answer is not retried for a few seconds: an agent
// retrying does not hammer the token endpoint.
func TestFailedRenewalBacksOff(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: expired("access-1", "refresh-1")}, nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	down := refreshFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		calls++
		return nil, errors.New("connection refused")
	})
	for i := range 5 {
		tn, err := s.Tenant(ctx, alice, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.TokenSource(ctx, alice, tn, down).Token()
		if want := map[bool]fault.Code{true: fault.AccountRelinkRequired, false: fault.Unavailable}[i == 0]; fault.CodeOf(err) != want {
			t.Fatalf("attempt %d: %v, want %s", i, err, want)
		}
	}
	if calls != 1 {
		t.Fatalf("the token endpoint was asked %d times in the back-off", calls)
	}
}

// The operator's reconcile finds whose each linked account is, from plain
// ids alone.
func TestCloudflareAccountsMapsAccountsToPrincipals(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const bob = "user:bob@example.com"
	if err := s.LinkCloudflare(ctx, alice, CloudflareLink{AccountID: acctA, Token: live("access-1", "")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkCloudflare(ctx, bob, CloudflareLink{AccountID: acctB, Token: live("access-2", "")}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := CloudflareAccounts(ctx, s.rdb, []string{bob, alice, "user:nolink@example.com", alice})
	if err != nil || len(got) != 2 || got[acctA] != alice || got[acctB] != bob {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := CloudflareAccounts(ctx, s.rdb, nil); err != nil || len(got) != 0 {
		t.Fatalf("no principals: %v %v", got, err)
	}
}
