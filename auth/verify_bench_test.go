//go:build !nosandbox

package auth

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
)

// Benchmarks of step 1 of the guard (SPEC §7): verifying a task token.
// Run with: go test -run '^$' -bench . -benchmem ./auth
// (make bench runs them; benchstat compares runs).

// benchAccessToken is a realistic task token (one actor, a resources
// detail) signed by f's sts key, whose key is already in the verifier's
// cache, as it is on every call but a replica's first.
func benchAccessToken(b *testing.B, f *fixture) string {
	b.Helper()
	c := f.accessClaims()
	rd, err := ResourcesDetail("shop.example")
	must(b, err)
	c.AuthorizationDetails = AuthorizationDetails{rd}
	tok, err := f.sts.Sign(c, TypAccessToken)
	must(b, err)
	if _, err := f.access.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkVerifyAccessToken is AccessVerifier.Verify: size and header
// checks, the Ed25519 signature, and the claims. No Redis: the key is cached.
func BenchmarkVerifyAccessToken(b *testing.B) {
	f := newFixture(b)
	tok := benchAccessToken(b, f)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.access.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.access.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEd25519VerifyFloor is the bare signature check of the same
// token: the part of Verify no implementation can skip.
func BenchmarkEd25519VerifyFloor(b *testing.B) {
	f := newFixture(b)
	tok := benchAccessToken(b, f)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig := ed25519.Sign(f.sts.priv, input)
	pub := f.sts.priv.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("signature refused")
		}
	}
}

// BenchmarkSignAccessToken is the issuing side of an exchange: KeyRing.Sign
// of a task token's claims.
func BenchmarkSignAccessToken(b *testing.B) {
	f := newFixture(b)
	c := f.accessClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.sts.Sign(c, TypAccessToken); err != nil {
			b.Fatal(err)
		}
	}
}
