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
	if n := len(cv.items); n > 2 {
		t.Fatalf("cache holds %d entries, max 2", n)
	}
}
