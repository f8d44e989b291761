//go:build !nosandbox

package auth

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestCachedVerifier(t *testing.T) {
	f := newFixture(t)
	cv := NewCachedVerifier(f.access, 2, f.clock.Now)
	ctx := context.Background()
	tok, err := f.sts.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)

	c1, err := cv.Verify(ctx, tok)
	must(t, err)
	c1.Subject = "tampered by a caller"
	c2, err := cv.Verify(ctx, tok)
	must(t, err)
	if c2.Subject != "user:alice@example.com" {
		t.Fatalf("a caller's change leaked into the cache: %q", c2.Subject)
	}

	// A token that differs in one byte is not the cached one.
	forged := tok[:len(tok)-2] + "AA"
	if forged == tok {
		forged = tok[:len(tok)-2] + "BA"
	}
	if _, err := cv.Verify(ctx, forged); fault.CodeOf(err) != fault.Unauthenticated {
		t.Fatalf("forged token: %v", err)
	}

	// Past its exp the cached token is verified again, and refused.
	f.clock.Advance(11 * time.Minute)
	if _, err := cv.Verify(ctx, tok); fault.CodeOf(err) != fault.Unauthenticated {
		t.Fatalf("expired cached token: %v", err)
	}

	// The cache stays bounded.
	for i := 0; i < 5; i++ {
		c := f.accessClaims()
		c.ID = "jti-b" + string(rune('0'+i))
		tk, err := f.sts.Sign(c, TypAccessToken)
		must(t, err)
		if _, err := cv.Verify(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if n := cv.cache.len(); n > 2 {
		t.Fatalf("cache holds %d entries, max 2", n)
	}
}

type countingAttestor struct {
	calls int
	exp   time.Time
}

func (c *countingAttestor) Attest(_ context.Context, ev Evidence) (Agent, error) {
	c.calls++
	if ev.Token == "bad" {
		return Agent{}, fault.New(fault.Unauthenticated, "bad")
	}
	return Agent{ID: "spiffe://x/agent", Kind: KindJWT, Expiry: c.exp, Detail: map[string]string{"iss": "x"}}, nil
}

// TestCachedAttestor: an attestation is verified once a minute at most,
// never past its exp; refusals and unix peers are never cached; callers
// cannot change what the cache holds.
func TestCachedAttestor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	inner := &countingAttestor{exp: now.Add(10 * time.Minute)}
	ca := NewCachedAttestor(inner, clock)
	ctx := context.Background()

	a1, err := ca.Attest(ctx, Evidence{Token: "good"})
	must(t, err)
	a1.Detail["iss"] = "tampered"
	a2, err := ca.Attest(ctx, Evidence{Token: "good"})
	must(t, err)
	if inner.calls != 1 || a2.Detail["iss"] != "x" {
		t.Fatalf("calls %d, detail %v: want one verification and an untouched copy", inner.calls, a2.Detail)
	}
	for i := 0; i < 3; i++ {
		if _, err := ca.Attest(ctx, Evidence{Token: "bad"}); err == nil {
			t.Fatal("a refused token was accepted")
		}
	}
	if inner.calls != 4 {
		t.Fatalf("refusals were cached: %d calls", inner.calls)
	}
	if _, err := ca.Attest(ctx, Evidence{PeerPID: 42}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Attest(ctx, Evidence{PeerPID: 42}); err != nil {
		t.Fatal(err)
	}
	if inner.calls != 6 {
		t.Fatalf("a unix peer's evidence was cached: %d calls", inner.calls)
	}
	// A minute later the token is verified again (a withdrawn key stops
	// working within the minute).
	now = now.Add(61 * time.Second)
	if _, err := ca.Attest(ctx, Evidence{Token: "good"}); err != nil || inner.calls != 7 {
		t.Fatalf("after a minute: err %v, calls %d; want a fresh verification", err, inner.calls)
	}
	// Never past exp, however recently verified.
	inner.exp = now.Add(5 * time.Second)
	if _, err := ca.Attest(ctx, Evidence{Token: "short"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(6 * time.Second)
	if _, err := ca.Attest(ctx, Evidence{Token: "short"}); err != nil || inner.calls != 9 {
		t.Fatalf("past exp: err %v, calls %d; want a fresh verification", err, inner.calls)
	}
}
