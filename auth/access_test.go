//go:build !nosandbox

package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

type attackCase struct {
	name   string
	token  func(t testing.TB, f *fixture) string
	reason Reason
}

// attackCases are tokens an attacker (or a confused client) presents as a
// tollgate access token. Each must be refused with exactly its reason.
func attackCases() []attackCase {
	valid := func(f *fixture) any { return f.claimsMap(nil) }
	claimsAt := func(edit func(f *fixture, m map[string]any)) func(testing.TB, *fixture) string {
		return func(_ testing.TB, f *fixture) string {
			return forge(f.header(nil), f.claimsMap(func(m map[string]any) { edit(f, m) }), edSigner(f.sts.priv))
		}
	}
	claims := func(edit func(m map[string]any)) func(testing.TB, *fixture) string {
		return claimsAt(func(_ *fixture, m map[string]any) { edit(m) })
	}
	headed := func(edit func(h map[string]any)) func(testing.TB, *fixture) string {
		return func(_ testing.TB, f *fixture) string {
			return forge(f.header(edit), valid(f), edSigner(f.sts.priv))
		}
	}
	at := func(f *fixture, d time.Duration) int64 { return f.clock.Now().Add(d).Unix() }
	return []attackCase{
		{"alg none", func(_ testing.TB, f *fixture) string {
			return forge(f.header(func(h map[string]any) { h["alg"] = "none" }), valid(f), noSig)
		}, ReasonAlgNotAllowed},
		{"alg None", func(_ testing.TB, f *fixture) string {
			return forge(f.header(func(h map[string]any) { h["alg"] = "None" }), valid(f), noSig)
		}, ReasonAlgNotAllowed},
		{"alg missing", headed(func(h map[string]any) { delete(h, "alg") }), ReasonAlgNotAllowed},
		{"HS256 signed with our public key", func(_ testing.TB, f *fixture) string {
			secret := []byte(f.sts.priv.Public().(ed25519.PublicKey))
			return forge(f.header(func(h map[string]any) { h["alg"] = "HS256" }), valid(f), hmacSigner(secret))
		}, ReasonAlgNotAllowed},
		{"HS256 signed with our published JWK", func(_ testing.TB, f *fixture) string {
			jwk, _ := json.Marshal(f.sts.PublicKey())
			return forge(f.header(func(h map[string]any) { h["alg"] = "HS256" }), valid(f), hmacSigner(jwk))
		}, ReasonAlgNotAllowed},
		{"ES256 with our kid", headed(func(h map[string]any) { h["alg"] = "ES256" }), ReasonAlgNotAllowed},
		{"empty signature", func(_ testing.TB, f *fixture) string {
			return forge(f.header(nil), valid(f), noSig)
		}, ReasonEmptySignature},
		{"unknown kid", func(t testing.TB, f *fixture) string {
			priv := attacker(t)
			kid, _ := thumbprintKID(jose.JSONWebKey{Key: priv.Public()})
			return forge(f.header(func(h map[string]any) { h["kid"] = kid }), valid(f), edSigner(priv))
		}, ReasonUnknownKID},
		{"missing kid", headed(func(h map[string]any) { delete(h, "kid") }), ReasonMissingKID},
		{"injected kid path", headed(func(h map[string]any) { h["kid"] = "../../../../../../dev/null" }), ReasonBadKID},
		{"injected kid glob", headed(func(h map[string]any) { h["kid"] = "*" }), ReasonBadKID},
		{"kid with control characters", headed(func(h map[string]any) { h["kid"] = "a\r\nb" }), ReasonBadKID},
		{"kid not a string", headed(func(h map[string]any) { h["kid"] = 7 }), ReasonMalformed},
		{"jku header", headed(func(h map[string]any) { h["jku"] = "https://evil.example/jwks.json" }), ReasonForbiddenHeader},
		{"x5u header", headed(func(h map[string]any) { h["x5u"] = "https://evil.example/cert.pem" }), ReasonForbiddenHeader},
		{"jwk header", func(t testing.TB, f *fixture) string {
			priv := attacker(t)
			pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: "EdDSA"}
			kid, _ := thumbprintKID(pub)
			return forge(f.header(func(h map[string]any) { h["jwk"], h["kid"] = pub, kid }), valid(f), edSigner(priv))
		}, ReasonForbiddenHeader},
		{"x5c header", headed(func(h map[string]any) { h["x5c"] = []string{"MIIBszCCAVmgAwIBAgIU"} }), ReasonForbiddenHeader},
		{"b64 header", headed(func(h map[string]any) { h["b64"] = false }), ReasonForbiddenHeader},
		{"crit header", headed(func(h map[string]any) { h["crit"] = []string{"exp"} }), ReasonCritHeader},
		{"expired", claimsAt(func(f *fixture, m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = at(f, -11*time.Minute), at(f, -11*time.Minute), at(f, -31*time.Second)
		}), ReasonExpired},
		{"missing exp", claims(func(m map[string]any) { delete(m, "exp") }), ReasonMissingExp},
		{"exp as string", claims(func(m map[string]any) { m["exp"] = "1900000000" }), ReasonMalformedClaims},
		{"exp out of range", claims(func(m map[string]any) { m["exp"] = 1e300 }), ReasonMalformedClaims},
		{"future nbf", claimsAt(func(f *fixture, m map[string]any) { m["nbf"] = at(f, 5*time.Minute) }), ReasonNotYetValid},
		{"future iat", claimsAt(func(f *fixture, m map[string]any) { m["iat"] = at(f, 5*time.Minute) }), ReasonIssuedInFuture},
		{"lifetime too long", claimsAt(func(f *fixture, m map[string]any) { m["exp"] = at(f, 61*time.Minute) }), ReasonLifetimeTooLong},
		{"wrong iss", claims(func(m map[string]any) { m["iss"] = "https://evil.example" }), ReasonWrongIssuer},
		{"iss with trailing slash", claims(func(m map[string]any) { m["iss"] = testIssuer + "/" }), ReasonWrongIssuer},
		{"missing iss", claims(func(m map[string]any) { delete(m, "iss") }), ReasonWrongIssuer},
		{"aud prefix trick", claims(func(m map[string]any) { m["aud"] = testResource + ".evil.example" }), ReasonWrongAudience},
		{"aud suffix trick", claims(func(m map[string]any) { m["aud"] = "https://evil.example/" + testResource }), ReasonWrongAudience},
		{"aud case trick", claims(func(m map[string]any) { m["aud"] = strings.ToUpper(testResource) }), ReasonWrongAudience},
		{"aud array with extra", claims(func(m map[string]any) { m["aud"] = []string{testResource, "https://other.example"} }), ReasonWrongAudience},
		{"aud array empty", claims(func(m map[string]any) { m["aud"] = []string{} }), ReasonWrongAudience},
		{"missing aud", claims(func(m map[string]any) { delete(m, "aud") }), ReasonWrongAudience},
		{"aud as one-element array", claims(func(m map[string]any) { m["aud"] = []string{testResource} }), ReasonMalformedClaims},
		{"missing sub", claims(func(m map[string]any) { delete(m, "sub") }), ReasonMissingClaim},
		{"missing sid", claims(func(m map[string]any) { delete(m, "sid") }), ReasonMissingClaim},
		{"missing client_id", claims(func(m map[string]any) { delete(m, "client_id") }), ReasonMissingClaim},
		{"missing jti", claims(func(m map[string]any) { delete(m, "jti") }), ReasonMissingClaim},
		{"missing iat", claims(func(m map[string]any) { delete(m, "iat") }), ReasonMissingClaim},
		{"scope with stray space", claims(func(m map[string]any) { m["scope"] = "domains:read  dns:write" }), ReasonBadScope},
		{"act chain too deep", claims(func(m map[string]any) {
			m["act"] = NewActorChain("a1", "a2", "a3", "a4", "a5", "a6")
		}), ReasonBadAct},
		{"unknown authorization_details type", claims(func(m map[string]any) {
			m["authorization_details"] = []any{map[string]any{"type": "payment_initiation", "amount": "1"}}
		}), ReasonMalformedClaims},
		{"id token presented as access token", func(t testing.TB, f *fixture) string {
			tok, err := f.dev.UserToken("alice@example.com", []string{"domains:read"}, 10*time.Minute)
			must(t, err)
			return tok
		}, ReasonWrongTyp},
		{"attestation token presented as access token", func(t testing.TB, f *fixture) string {
			tok, err := f.dev.AgentToken("deployer", 10*time.Minute)
			must(t, err)
			return tok
		}, ReasonWrongTyp},
		{"sts key with typ JWT", headed(func(h map[string]any) { h["typ"] = "JWT" }), ReasonWrongTyp},
		{"missing typ", headed(func(h map[string]any) { delete(h, "typ") }), ReasonWrongTyp},
		{"dev-idp key signing at+jwt", func(_ testing.TB, f *fixture) string {
			return forge(f.header(func(h map[string]any) { h["kid"] = f.idp.KID() }), valid(f), edSigner(f.idp.priv))
		}, ReasonUnknownKID},
		{"signature from another key", func(t testing.TB, f *fixture) string {
			return forge(f.header(nil), valid(f), edSigner(attacker(t)))
		}, ReasonBadSignature},
		{"tampered payload", func(t testing.TB, f *fixture) string {
			tok := forge(f.header(nil), valid(f), edSigner(f.sts.priv))
			parts := strings.Split(tok, ".")
			p, _ := json.Marshal(f.claimsMap(func(m map[string]any) { m["scope"] = "admin" }))
			return parts[0] + "." + b64(p) + "." + parts[2]
		}, ReasonBadSignature},
		{"non-canonical base64 signature", func(t testing.TB, f *fixture) string {
			tok := forge(f.header(nil), valid(f), edSigner(f.sts.priv))
			// An Ed25519 signature leaves 4 spare bits in its last base64
			// character; setting one decodes to the same bytes leniently.
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, tok[len(tok)-1])
			return tok[:len(tok)-1] + string(alphabet[last|1])
		}, ReasonMalformed},
		{"padded base64", func(t testing.TB, f *fixture) string {
			return forge(f.header(nil), valid(f), edSigner(f.sts.priv)) + "=="
		}, ReasonMalformed},
		{"duplicate header name", func(_ testing.TB, f *fixture) string {
			h := []byte(`{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"` + f.sts.KID() + `"}`)
			p, _ := json.Marshal(valid(f))
			return forgeRaw(h, p, edSigner(f.sts.priv))
		}, ReasonDuplicateName},
		{"duplicate claim", func(_ testing.TB, f *fixture) string {
			h, _ := json.Marshal(f.header(nil))
			p, _ := json.Marshal(valid(f))
			p = append(p[:len(p)-1], []byte(`,"sub":"user:mallory@example.com"}`)...)
			return forgeRaw(h, p, edSigner(f.sts.priv))
		}, ReasonDuplicateName},
		{"case-folded duplicate claim", func(_ testing.TB, f *fixture) string {
			h, _ := json.Marshal(f.header(nil))
			p, _ := json.Marshal(valid(f))
			p = append(p[:len(p)-1], []byte(`,"ſid":"sess-2"}`)...)
			return forgeRaw(h, p, edSigner(f.sts.priv))
		}, ReasonDuplicateName},
		{"payload not an object", func(_ testing.TB, f *fixture) string {
			h, _ := json.Marshal(f.header(nil))
			return forgeRaw(h, []byte(`["iss"]`), edSigner(f.sts.priv))
		}, ReasonMalformedClaims},
		{"json serialization", func(t testing.TB, f *fixture) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: f.sts.priv, KeyID: f.sts.KID()}},
				(&jose.SignerOptions{}).WithType("at+jwt"))
			must(t, err)
			p, _ := json.Marshal(valid(f))
			jws, err := s.Sign(p)
			must(t, err)
			return jws.FullSerialize()
		}, ReasonNotCompact},
		{"five parts (JWE shape)", func(_ testing.TB, f *fixture) string {
			return forge(f.header(nil), valid(f), edSigner(f.sts.priv)) + ".a.b"
		}, ReasonNotCompact},
		{"oversized token", claims(func(m map[string]any) { m["pad"] = strings.Repeat("x", 9000) }), ReasonOversized},
		{"garbage", func(testing.TB, *fixture) string { return "not.a.token" }, ReasonMalformed},
		{"empty", func(testing.TB, *fixture) string { return "" }, ReasonNotCompact},
	}
}

func TestAccessTokenAttacks(t *testing.T) {
	f := newFixture(t)
	for _, c := range attackCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.access.Verify(context.Background(), c.token(t, f))
			wantRefusal(t, err, fault.Unauthenticated, c.reason)
		})
	}
}

func TestAccessTokenAccepted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	want := f.accessClaims()
	want.ParentSessionID = "sess-0"
	want.Act = NewActorChain("spiffe://tollgate.sandbox/agent/deployer", "spiffe://tollgate.sandbox/agent/planner")
	rd, err := ResourcesDetail("Shop.Example")
	must(t, err)
	want.AuthorizationDetails = AuthorizationDetails{rd}

	tok, err := f.sts.Sign(want, TypAccessToken)
	must(t, err)
	got, err := f.access.Verify(ctx, tok)
	must(t, err)
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("claims\n got %+v\nwant %+v", *got, want)
	}
	if s := got.Scopes(); !reflect.DeepEqual(s, []string{"domains:read", "dns:write"}) {
		t.Fatalf("scopes %q", s)
	}
	if c := got.Act.Chain(); len(c) != 2 || c[1] != "spiffe://tollgate.sandbox/agent/planner" {
		t.Fatalf("chain %q", c)
	}

	tests := []struct {
		name  string
		token func() string
	}{
		{"expired within leeway", func() string {
			return forge(f.header(nil), f.claimsMap(func(m map[string]any) {
				now := f.clock.Now()
				m["iat"], m["nbf"], m["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-10*time.Minute).Unix(), now.Add(-20*time.Second).Unix()
			}), edSigner(f.sts.priv))
		}},
		{"nbf within leeway", func() string {
			return forge(f.header(nil), f.claimsMap(func(m map[string]any) { m["nbf"] = f.clock.Now().Add(20 * time.Second).Unix() }), edSigner(f.sts.priv))
		}},
		{"typ with application/ prefix, any case", func() string {
			return forge(f.header(func(h map[string]any) { h["typ"] = "application/AT+JWT" }), f.claimsMap(nil), edSigner(f.sts.priv))
		}},
		{"fractional NumericDate", func() string {
			return forge(f.header(nil), f.claimsMap(func(m map[string]any) { m["exp"] = float64(f.clock.Now().Unix()) + 60.5 }), edSigner(f.sts.priv))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.access.Verify(ctx, tt.token()); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func hmacSigner(secret []byte) signer {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}
