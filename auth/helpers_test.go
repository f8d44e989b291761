//go:build !nosandbox

package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

const (
	testIssuer   = "https://tollgate.test"
	testResource = "https://tollgate.test/mcp"
)

// fakeClock is the explicit clock every component under test reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is one tollgate replica's auth wiring on a fresh Redis database.
type fixture struct {
	clock           *fakeClock
	rdb             *redis.Client
	sts, idp, agent *KeyRing
	stsKeys         *RedisKeys
	access          *AccessVerifier
	dev             *DevSigner
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), rdb: testkit.Redis(t)}
	t.Cleanup(func() { f.rdb.Close() })
	f.sts = newRing(t, f.rdb, NamespaceSTS, f.clock)
	f.idp = newRing(t, f.rdb, NamespaceDevIDP, f.clock)
	f.agent = newRing(t, f.rdb, NamespaceDevAgent, f.clock)
	f.stsKeys = newRedisKeys(t, f.rdb, NamespaceSTS, f.clock)
	var err error
	f.access, err = NewAccessVerifier(AccessVerifierConfig{
		Issuer: testIssuer, Resource: testResource, Keys: f.stsKeys, Clock: f.clock.Now,
	})
	must(t, err)
	f.dev, err = NewDevSigner(DevSignerConfig{Issuer: testIssuer, IDP: f.idp, Agent: f.agent, Clock: f.clock.Now})
	must(t, err)
	return f
}

func newRing(t testing.TB, rdb redis.UniversalClient, ns Namespace, clock *fakeClock) *KeyRing {
	t.Helper()
	k, err := NewKeyRing(KeyRingConfig{Namespace: ns, Redis: rdb, Clock: clock.Now})
	must(t, err)
	must(t, k.Publish(context.Background()))
	return k
}

func newRedisKeys(t testing.TB, rdb redis.UniversalClient, ns Namespace, clock *fakeClock) *RedisKeys {
	t.Helper()
	k, err := NewRedisKeys(RedisKeysConfig{Namespace: ns, Redis: rdb, Clock: clock.Now})
	must(t, err)
	return k
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// accessClaims is a valid access token's claims at the fixture's now.
func (f *fixture) accessClaims() Claims {
	now := f.clock.Now()
	return Claims{
		Issuer:    testIssuer,
		Subject:   "user:alice@example.com",
		Audience:  testResource,
		Expiry:    jwt.NewNumericDate(now.Add(10 * time.Minute)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        "jti-1",
		Scope:     "domains:read dns:write",
		ClientID:  "spiffe://tollgate.sandbox/agent/deployer",
		SessionID: "sess-1",
		Act:       NewActorChain("spiffe://tollgate.sandbox/agent/deployer"),
	}
}

// claimsMap is accessClaims as a JSON object, for forging variants.
func (f *fixture) claimsMap(edit func(m map[string]any)) map[string]any {
	b, err := json.Marshal(f.accessClaims())
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	if edit != nil {
		edit(m)
	}
	return m
}

// header is the header KeyRing.Sign writes for the sts ring.
func (f *fixture) header(edit func(h map[string]any)) map[string]any {
	h := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.sts.KID()}
	if edit != nil {
		edit(h)
	}
	return h
}

// signer computes a signature over a JWS signing input.
type signer func(input []byte) []byte

func edSigner(priv ed25519.PrivateKey) signer {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

func noSig([]byte) []byte { return nil }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forgeRaw builds a compact JWS from raw header and payload bytes.
func forgeRaw(header, payload []byte, sign signer) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + b64(sign([]byte(in)))
}

func forge(header map[string]any, payload any, sign signer) string {
	h, err := json.Marshal(header)
	if err != nil {
		panic(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return forgeRaw(h, p, sign)
}

// attacker is a key pair tollgate has never seen.
func attacker(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	return priv
}

// wantRefusal asserts err is a *fault.Error with code and reason.
func wantRefusal(t testing.TB, err error, code fault.Code, reason Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s/%s", code, reason)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *fault.Error", err)
	}
	if fe.Code != code || ReasonOf(err) != reason {
		t.Fatalf("got %s/%s (%v); want %s/%s", fe.Code, ReasonOf(err), err, code, reason)
	}
	if fe.Public == "" {
		t.Fatalf("no public message on %v", err)
	}
}
