//go:build !nosandbox

package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// twoReplicas returns two Redis clients on one fresh database, as two
// tollgate processes pointed at the same --redis-url would have.
func twoReplicas(t *testing.T) (a, b *redis.Client) {
	opt := testkit.RedisOptions(t)
	a, b = redis.NewClient(opt), redis.NewClient(opt)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func accessVerifier(t testing.TB, keys KeySource, clock *fakeClock) *AccessVerifier {
	t.Helper()
	v, err := NewAccessVerifier(AccessVerifierConfig{Issuer: testIssuer, Resource: testResource, Keys: keys, Clock: clock.Now})
	must(t, err)
	return v
}

func TestKeySharingAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	rdbA, rdbB := twoReplicas(t)
	clock := newClock()
	ringA := newRing(t, rdbA, NamespaceSTS, clock)
	ringB := newRing(t, rdbB, NamespaceSTS, clock)
	verifierB := accessVerifier(t, newRedisKeys(t, rdbB, NamespaceSTS, clock), clock)

	f := &fixture{clock: clock}
	tokA, err := ringA.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)
	if _, err := verifierB.Verify(ctx, tokA); err != nil {
		t.Fatalf("replica B refused replica A's token: %v", err)
	}
	tokB, err := ringB.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)
	if _, err := verifierB.Verify(ctx, tokB); err != nil {
		t.Fatalf("replica B refused its own token: %v", err)
	}

	set, err := ringB.JWKS(ctx)
	must(t, err)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
		if !k.IsPublic() {
			t.Fatalf("JWKS holds a non-public key %s", k.KeyID)
		}
	}
	if len(kids) != 2 || !(strings.Contains(strings.Join(kids, ","), ringA.KID()) && strings.Contains(strings.Join(kids, ","), ringB.KID())) {
		t.Fatalf("JWKS kids %v; want %s and %s", kids, ringA.KID(), ringB.KID())
	}
	// Namespaces are separate: the dev IdP's JWKS does not list sts keys.
	idp := newRing(t, rdbA, NamespaceDevIDP, clock)
	set, err = idp.JWKS(ctx)
	must(t, err)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != idp.KID() {
		t.Fatalf("dev-idp JWKS %v", set.Keys)
	}
}

func TestPrivateKeyNeverPublished(t *testing.T) {
	ctx := context.Background()
	rdb := testkit.Redis(t)
	defer rdb.Close()
	ring := newRing(t, rdb, NamespaceSTS, newClock())
	members, err := rdb.ZRange(ctx, keysKey(NamespaceSTS), 0, -1).Result()
	must(t, err)
	if len(members) != 1 {
		t.Fatalf("members %v", members)
	}
	var m map[string]any
	must(t, json.Unmarshal([]byte(members[0]), &m))
	if _, ok := m["d"]; ok {
		t.Fatal("published JWK holds the private key")
	}
	seed := ring.priv.Seed()
	for _, s := range []string{fmt.Sprintf("%v", ring), fmt.Sprintf("%+v", ring), fmt.Sprintf("%#v", ring), members[0]} {
		for _, enc := range []string{hex.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed)[:40]} {
			if strings.Contains(s, enc) {
				t.Fatalf("private key leaked in %q", s)
			}
		}
	}
}

func TestExpiredReplicaKeyStopsVerifying(t *testing.T) {
	ctx := context.Background()
	rdbA, rdbB := twoReplicas(t)
	clock := newClock()
	ringA := newRing(t, rdbA, NamespaceSTS, clock) // dies after this publish
	ringB := newRing(t, rdbB, NamespaceSTS, clock) // keeps running
	keysB := newRedisKeys(t, rdbB, NamespaceSTS, clock)
	verifierB := accessVerifier(t, keysB, clock)
	f := &fixture{clock: clock}
	// A token from A's key that is otherwise valid at any clock reading.
	tokenFromA := func() string {
		return forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": ringA.KID()}, f.claimsMap(nil), edSigner(ringA.priv))
	}

	if _, err := verifierB.Verify(ctx, tokenFromA()); err != nil {
		t.Fatalf("live key refused: %v", err)
	}
	// Within A's key TTL, B re-publishing does not drop A.
	clock.Advance(90 * time.Minute)
	must(t, ringB.Publish(ctx))
	if _, err := verifierB.Verify(ctx, tokenFromA()); err != nil {
		t.Fatalf("key within its TTL refused: %v", err)
	}
	// Past A's TTL: the cached key lapses, Redis no longer lists it.
	clock.Advance(31 * time.Minute)
	must(t, ringB.Publish(ctx))
	_, err := verifierB.Verify(ctx, tokenFromA())
	wantRefusal(t, err, fault.Unauthenticated, ReasonUnknownKID)

	// B still verifies; B's publish pruned A from the set.
	tokB, err := ringB.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)
	if _, err := verifierB.Verify(ctx, tokB); err != nil {
		t.Fatalf("live replica refused: %v", err)
	}
	if n := rdbB.ZCard(ctx, keysKey(NamespaceSTS)).Val(); n != 1 {
		t.Fatalf("%d keys left in the set; want only B's", n)
	}
	set, err := ringB.JWKS(ctx)
	must(t, err)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != ringB.KID() {
		t.Fatalf("JWKS still lists a dead key: %v", set.Keys)
	}
	// The set itself expires with its last live key.
	ttl := rdbB.PTTL(ctx, keysKey(NamespaceSTS)).Val()
	if ttl <= 0 || ttl > 2*time.Hour {
		t.Fatalf("set TTL %s; want (0, 2h]", ttl)
	}
}

// readCounter counts commands that reach Redis, leaving out the ones
// go-redis sends to set up a connection.
type readCounter struct{ n atomic.Int64 }

func (c *readCounter) count(cmd redis.Cmder) {
	switch cmd.Name() {
	case "hello", "client", "select", "auth":
	default:
		c.n.Add(1)
	}
}

func (c *readCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *readCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}
func (c *readCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func randomKID(t testing.TB) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	must(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestUnknownKIDRefreshRateLimit(t *testing.T) {
	ctx := context.Background()
	opt := testkit.RedisOptions(t)
	writer := redis.NewClient(opt)
	reader := redis.NewClient(opt)
	defer writer.Close()
	defer reader.Close()
	counter := &readCounter{}
	reader.AddHook(counter)
	clock := newClock()
	ring := newRing(t, writer, NamespaceSTS, clock)
	keys := newRedisKeys(t, reader, NamespaceSTS, clock)

	flood := func() {
		var wg sync.WaitGroup
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					_, err := keys.Key(ctx, randomKID(t))
					if ReasonOf(err) != ReasonUnknownKID {
						t.Errorf("random kid: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}

	flood()
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("1600 unknown kids in one second cost %d Redis reads; want 1", n)
	}
	// The one refresh loaded every live key: the real kid needs no read.
	if _, err := keys.Key(ctx, ring.KID()); err != nil {
		t.Fatalf("live kid: %v", err)
	}
	// Malformed kids never reach Redis.
	for _, kid := range []string{"../../etc/passwd", "*", "", strings.Repeat("A", 44)} {
		if _, err := keys.Key(ctx, kid); ReasonOf(err) != ReasonBadKID {
			t.Fatalf("kid %q: %v", kid, err)
		}
	}
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("reads %d after cached and malformed kids; want 1", n)
	}

	// A replica that starts within the same second is found after it.
	fresh := newRing(t, writer, NamespaceSTS, clock)
	if _, err := keys.Key(ctx, fresh.KID()); ReasonOf(err) != ReasonUnknownKID {
		t.Fatalf("new kid within the interval: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := keys.Key(ctx, fresh.KID()); err != nil {
		t.Fatalf("new kid after the interval: %v", err)
	}
	flood()
	if n := counter.n.Load(); n != 2 {
		t.Fatalf("reads %d after two seconds of flood; want 2", n)
	}
}

func TestKeyStoreDownFailsClosed(t *testing.T) {
	clock := newClock()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	keys := newRedisKeys(t, rdb, NamespaceSTS, clock)
	v := accessVerifier(t, keys, clock)
	f := newFixture(t)
	tok, err := f.sts.Sign(f.accessClaims(), TypAccessToken)
	must(t, err)
	_, err = v.Verify(context.Background(), tok)
	wantRefusal(t, err, fault.Unavailable, ReasonKeysUnavailable)

	ring, err := NewKeyRing(KeyRingConfig{Namespace: NamespaceSTS, Redis: rdb, Clock: clock.Now})
	must(t, err)
	if err := ring.Publish(context.Background()); err == nil {
		t.Fatal("publish to a dead Redis succeeded")
	}
	_, err = ring.Sign(f.accessClaims(), TypAccessToken)
	wantRefusal(t, err, fault.Unavailable, ReasonKeyNotPublished)
	if _, err := ring.JWKS(context.Background()); err == nil {
		t.Fatal("JWKS from a dead Redis returned no error")
	}
}

func TestSignRefusals(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	long := f.accessClaims()
	long.Expiry = jwt.NewNumericDate(now.Add(61 * time.Minute))
	noExp := f.accessClaims()
	noExp.Expiry = nil
	tests := []struct {
		name   string
		ring   *KeyRing
		v      any
		typ    string
		code   fault.Code
		reason Reason
	}{
		{"sts ring refuses typ JWT", f.sts, f.accessClaims(), TypJWT, fault.Internal, ReasonWrongTokenType},
		{"dev ring refuses at+jwt", f.idp, f.accessClaims(), TypAccessToken, fault.Internal, ReasonWrongTokenType},
		{"no exp", f.sts, noExp, TypAccessToken, fault.Internal, ReasonNoExpToSign},
		{"exp as string", f.sts, map[string]any{"exp": "soon"}, TypAccessToken, fault.Internal, ReasonNoExpToSign},
		{"exp in another case", f.sts, map[string]any{"EXP": now.Unix() + 60}, TypAccessToken, fault.Internal, ReasonNoExpToSign},
		{"beyond max lifetime", f.sts, long, TypAccessToken, fault.InvalidArgument, ReasonTooLongLived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ring.Sign(tt.v, tt.typ)
			wantRefusal(t, err, tt.code, tt.reason)
		})
	}

	t.Run("not re-published outlives the key", func(t *testing.T) {
		// Redis has been unreachable: the last publish covers less than
		// the token would live.
		f.clock.Advance(2*time.Hour - 5*time.Minute)
		_, err := f.sts.Sign(f.accessClaims(), TypAccessToken)
		wantRefusal(t, err, fault.Unavailable, ReasonKeyNotPublished)
		must(t, f.sts.Publish(context.Background()))
		if _, err := f.sts.Sign(f.accessClaims(), TypAccessToken); err != nil {
			t.Fatalf("after re-publishing: %v", err)
		}
	})
}

func TestKeyRingRunRepublishes(t *testing.T) {
	rdb := testkit.Redis(t)
	defer rdb.Close()
	clock := newClock()
	ring, err := NewKeyRing(KeyRingConfig{Namespace: NamespaceSTS, Redis: rdb, Clock: clock.Now,
		RefreshEvery: 10 * time.Millisecond, KeyTTL: time.Hour, MaxTokenLifetime: 10 * time.Minute})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ring.Run(ctx) }()
	key := keysKey(NamespaceSTS)
	want := float64(clock.Now().Add(time.Hour).UnixMilli())
	deadline := time.Now().Add(5 * time.Second)
	for rdb.ZScore(context.Background(), key, ring.member).Val() != want {
		if time.Now().After(deadline) {
			t.Fatal("Run did not publish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clock.Advance(time.Minute)
	want = float64(clock.Now().Add(time.Hour).UnixMilli())
	for rdb.ZScore(context.Background(), key, ring.member).Val() != want {
		if time.Now().After(deadline) {
			t.Fatal("Run did not re-publish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}

func TestKeyRingConfigValidation(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	bad := []KeyRingConfig{
		{Namespace: "other", Redis: rdb},
		{Namespace: NamespaceSTS},
		{Namespace: NamespaceSTS, Redis: rdb, KeyTTL: time.Hour, MaxTokenLifetime: time.Hour},
		{Namespace: NamespaceSTS, Redis: rdb, KeyTTL: -time.Hour},
	}
	for i, cfg := range bad {
		if _, err := NewKeyRing(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	if _, err := NewRedisKeys(RedisKeysConfig{Namespace: NamespaceSTS}); err == nil {
		t.Error("RedisKeys without Redis accepted")
	}
	devKeys, err := NewRedisKeys(RedisKeysConfig{Namespace: NamespaceDevIDP, Redis: rdb})
	must(t, err)
	if _, err := NewAccessVerifier(AccessVerifierConfig{Issuer: testIssuer, Resource: testResource, Keys: devKeys}); err == nil {
		t.Error("access verifier over dev-idp keys accepted")
	}
	for _, u := range []string{"", "tollgate.test", "https://tollgate.test/", "https://u:p@tollgate.test", "https://tollgate.test?x=1", "ftp://tollgate.test"} {
		if _, err := NewAccessVerifier(AccessVerifierConfig{Issuer: u, Resource: testResource, Keys: devKeys}); err == nil {
			t.Errorf("issuer %q accepted", u)
		}
	}
}
