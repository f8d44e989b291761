//go:build !nosandbox

package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestDevTokensThroughRealVerifiers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users, err := NewDevSubjectVerifier(DevVerifyConfig{Issuer: testIssuer, Keys: newRedisKeys(t, f.rdb, NamespaceDevIDP, f.clock), Clock: f.clock.Now})
	must(t, err)
	agents, err := NewDevAttestor(DevVerifyConfig{Issuer: testIssuer, Keys: newRedisKeys(t, f.rdb, NamespaceDevAgent, f.clock), Clock: f.clock.Now})
	must(t, err)

	ut, err := f.dev.UserToken("Alice@Example.com", []string{"domains:read", "spend:stripe"}, 10*time.Minute)
	must(t, err)
	sc, err := users.Verify(ctx, ut)
	must(t, err)
	if sc.Principal() != "user:alice@example.com" || !sc.EmailVerified || sc.Email != "alice@example.com" ||
		sc.Scope != "domains:read spend:stripe" || sc.Issuer != testIssuer+"/dev/idp" || sc.ID == "" {
		t.Fatalf("user claims %+v", sc)
	}

	at, err := f.dev.AgentToken("deployer", 10*time.Minute)
	must(t, err)
	agent, err := agents.Attest(ctx, Evidence{Token: at})
	must(t, err)
	if agent.ID != "spiffe://tollgate.sandbox/agent/deployer" || agent.Kind != KindDev ||
		!agent.Expiry.Equal(f.clock.Now().Add(10*time.Minute)) || agent.Detail["iss"] != testIssuer+"/dev/attest" {
		t.Fatalf("agent %+v", agent)
	}

	access, err := f.sts.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)
	crossed := []struct {
		name   string
		verify func() error
		reason Reason
	}{
		{"access token presented as subject token", func() error { _, err := users.Verify(ctx, access); return err }, ReasonWrongTyp},
		{"access token presented as attestation", func() error { _, err := agents.Attest(ctx, Evidence{Token: access}); return err }, ReasonWrongTyp},
		{"agent token presented as subject token", func() error { _, err := users.Verify(ctx, at); return err }, ReasonUnknownKID},
		{"user token presented as attestation", func() error { _, err := agents.Attest(ctx, Evidence{Token: ut}); return err }, ReasonUnknownKID},
		{"no attestation token", func() error { _, err := agents.Attest(ctx, Evidence{}); return err }, ReasonMissingEvidence},
		{"user token for another audience", func() error {
			tok := forge(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": f.idp.KID()}, map[string]any{
				"iss": testIssuer + "/dev/idp", "sub": "alice@example.com", "aud": "https://other.example",
				"iat": f.clock.Now().Unix(), "exp": f.clock.Now().Add(time.Minute).Unix(),
			}, edSigner(f.idp.priv))
			_, err := users.Verify(ctx, tok)
			return err
		}, ReasonWrongAudience},
	}
	for _, c := range crossed {
		t.Run(c.name, func(t *testing.T) { wantRefusal(t, c.verify(), fault.Unauthenticated, c.reason) })
	}

	for _, name := range []string{"", "Deployer", "-x", "a/b", "a.b", strings.Repeat("a", 64), "spiffe://x"} {
		if _, err := f.dev.AgentToken(name, time.Minute); fault.CodeOf(err) != fault.InvalidArgument {
			t.Errorf("agent name %q: %v", name, err)
		}
	}
	for _, email := range []string{"", "alice", "Alice <alice@example.com>", "a b@example.com"} {
		if _, err := f.dev.UserToken(email, nil, time.Minute); fault.CodeOf(err) != fault.InvalidArgument {
			t.Errorf("email %q: %v", email, err)
		}
	}
	if _, err := f.dev.UserToken("alice@example.com", nil, 2*time.Hour); fault.CodeOf(err) != fault.InvalidArgument {
		t.Errorf("two-hour dev token: %v", err)
	}
}

// workload is an external workload issuer with its own keys.
type workload struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	jwks []byte
}

func newWorkload(t *testing.T) *workload {
	w := &workload{}
	var err error
	w.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	w.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	_, w.ed, err = ed25519.GenerateKey(rand.Reader)
	must(t, err)
	w.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: w.rsa.Public(), KeyID: "rsa-1", Use: "sig"},
		{Key: w.ec.Public(), KeyID: "ec-1", Algorithm: "ES256"},
		{Key: w.ed.Public(), KeyID: "ed-1"},
	}})
	must(t, err)
	return w
}

func (w *workload) token(t *testing.T, alg jose.SignatureAlgorithm, kid string, typ string, c jwt.Claims) string {
	var key any
	switch alg {
	case jose.RS256:
		key = w.rsa
	case jose.ES256:
		key = w.ec
	default:
		key = w.ed
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	must(t, err)
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	must(t, err)
	return tok
}

func TestJWTAttestor(t *testing.T) {
	ctx := context.Background()
	w := newWorkload(t)
	path := filepath.Join(t.TempDir(), "bundle.json")
	must(t, os.WriteFile(path, w.jwks, 0o600))
	bundle, err := LoadStaticKeys(path)
	must(t, err)
	clock := newClock()
	const iss, aud = "https://kubernetes.default.svc", "https://tollgate.test"
	att, err := NewJWTAttestor(JWTAttestorConfig{
		Issuer: iss, Audience: aud, Keys: bundle, Clock: clock.Now, AllowMissingTyp: true,
		Algorithms: []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA},
	})
	must(t, err)
	now := clock.Now()
	claims := func(sub string) jwt.Claims {
		return jwt.Claims{Issuer: iss, Subject: sub, Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	}

	accepted := []struct {
		name, token, id string
	}{
		{"kubernetes RS256 without typ", w.token(t, jose.RS256, "rsa-1", "", claims("system:serviceaccount:ci:deployer")), "system:serviceaccount:ci:deployer"},
		{"JWT-SVID ES256", w.token(t, jose.ES256, "ec-1", "JWT", claims("spiffe://example.org/agent/deployer")), "spiffe://example.org/agent/deployer"},
		{"EdDSA", w.token(t, jose.EdDSA, "ed-1", "JWT", claims("repo:acme/site:ref:refs/heads/main")), "repo:acme/site:ref:refs/heads/main"},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			a, err := att.Attest(ctx, Evidence{Token: c.token})
			must(t, err)
			if a.ID != c.id || a.Kind != KindJWT || !a.Expiry.Equal(now.Add(time.Hour)) || a.Detail["iss"] != iss {
				t.Fatalf("agent %+v", a)
			}
		})
	}

	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must509(t, &w.rsa.PublicKey)})
	refused := []struct {
		name, token string
		reason      Reason
	}{
		{"HS256 signed with the issuer's RSA public key", forge(map[string]any{"alg": "HS256", "kid": "rsa-1"}, claims("x"), hmacSigner(pubPEM)), ReasonAlgNotAllowed},
		{"RS256 naming the EC key", forge(map[string]any{"alg": "RS256", "kid": "ec-1"}, claims("x"), func(in []byte) []byte { return []byte("sig") }), ReasonKeyAlgMismatch},
		{"EdDSA naming the RSA key", w.token(t, jose.EdDSA, "rsa-1", "", claims("x")), ReasonKeyAlgMismatch},
		{"kid not in bundle", w.token(t, jose.RS256, "rsa-2", "", claims("x")), ReasonUnknownKID},
		{"access token typ", w.token(t, jose.RS256, "rsa-1", "at+jwt", claims("x")), ReasonWrongTyp},
		{"sub posing as a unix peer", w.token(t, jose.RS256, "rsa-1", "", claims("unix:uid=0:exe=/bin/sh:sha256=00")), ReasonBadSubject},
		{"sub posing as a user", w.token(t, jose.RS256, "rsa-1", "", claims("user:alice@example.com")), ReasonBadSubject},
		{"sub with a newline", w.token(t, jose.RS256, "rsa-1", "", claims("a\nb")), ReasonBadSubject},
		{"empty sub", w.token(t, jose.RS256, "rsa-1", "", claims("")), ReasonMissingClaim},
		{"another issuer", w.token(t, jose.RS256, "rsa-1", "", jwt.Claims{Issuer: "https://evil.example", Subject: "x", Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(now.Add(time.Minute))}), ReasonWrongIssuer},
		{"day-long token", w.token(t, jose.RS256, "rsa-1", "", jwt.Claims{Issuer: iss, Subject: "x", Audience: jwt.Audience{aud}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(25 * time.Hour))}), ReasonLifetimeTooLong},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := att.Attest(ctx, Evidence{Token: c.token})
			wantRefusal(t, err, fault.Unauthenticated, c.reason)
		})
	}

	strict, err := NewJWTAttestor(JWTAttestorConfig{Issuer: iss, Audience: aud, Keys: bundle, Clock: clock.Now, Algorithms: []jose.SignatureAlgorithm{jose.RS256}})
	must(t, err)
	_, err = strict.Attest(ctx, Evidence{Token: accepted[0].token})
	wantRefusal(t, err, fault.Unauthenticated, ReasonWrongTyp)

	for name, cfg := range map[string]JWTAttestorConfig{
		"HS256 allowed":    {Issuer: iss, Audience: aud, Keys: bundle, Algorithms: []jose.SignatureAlgorithm{jose.HS256}},
		"none allowed":     {Issuer: iss, Audience: aud, Keys: bundle, Algorithms: []jose.SignatureAlgorithm{"none"}},
		"at+jwt as typ":    {Issuer: iss, Audience: aud, Keys: bundle, Typ: "application/at+jwt"},
		"no keys":          {Issuer: iss, Audience: aud},
		"no audience":      {Issuer: iss, Keys: bundle},
		"leeway over 2min": {Issuer: iss, Audience: aud, Keys: bundle, Leeway: 3 * time.Minute},
	} {
		if _, err := NewJWTAttestor(cfg); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
}

func must509(t *testing.T, pub any) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	must(t, err)
	return b
}

func TestStaticKeysRefusesUnsafeBundles(t *testing.T) {
	w := newWorkload(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, err)
	enc := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		must(t, err)
		return b
	}
	bad := map[string][]byte{
		"symmetric key":   enc(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256"}),
		"private key":     enc(jose.JSONWebKey{Key: w.ec, KeyID: "ec"}),
		"1024-bit RSA":    enc(jose.JSONWebKey{Key: small.Public(), KeyID: "small"}),
		"no kid":          enc(jose.JSONWebKey{Key: w.ec.Public()}),
		"duplicate kid":   enc(jose.JSONWebKey{Key: w.ec.Public(), KeyID: "a"}, jose.JSONWebKey{Key: w.ed.Public(), KeyID: "a"}),
		"HS256 alg on EC": enc(jose.JSONWebKey{Key: w.ec.Public(), KeyID: "a", Algorithm: "HS256"}),
		"no keys":         []byte(`{"keys":[]}`),
		"not JSON":        []byte(`keys`),
		"duplicate keys":  []byte(`{"keys":[],"keys":[]}`),
	}
	for name, doc := range bad {
		if _, err := NewStaticKeys(doc); err == nil {
			t.Errorf("%s: bundle accepted", name)
		}
	}
	// A SPIFFE bundle: x509-svid and enc entries are skipped, jwt-svid kept.
	spiffe := []byte(`{"spiffe_sequence":1,"keys":[
		{"use":"x509-svid","kty":"EC","crv":"P-256","x":"x","y":"y","x5c":["bm90IGEgY2VydA=="]},
		{"use":"enc","kty":"oct","k":"c2VjcmV0"},
		` + strings.TrimSuffix(strings.TrimPrefix(string(enc(jose.JSONWebKey{Key: w.ed.Public(), KeyID: "svid", Use: "jwt-svid"})), `{"keys":[`), `]}`) + `]}`)
	s, err := NewStaticKeys(spiffe)
	must(t, err)
	if kids := s.KIDs(); len(kids) != 1 || kids[0] != "svid" {
		t.Fatalf("kids %v", kids)
	}
}
