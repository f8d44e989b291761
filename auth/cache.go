package auth

import (
	"context"
	"crypto/sha256"
	"maps"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// CachedVerifier remembers access tokens it has verified, keyed by the
// token's SHA-256, until they expire: a token is immutable, so its
// signature and claims need checking once per replica, not once per call.
// It caches only what the token itself says; whether its task session is
// still active is never cached (the guard asks Redis on every call).
type CachedVerifier struct {
	v     *AccessVerifier
	cache *tokenCache[*Claims]
}

// NewCachedVerifier wraps v with a cache of at most max tokens (default
// 10,000); clock defaults to time.Now.
func NewCachedVerifier(v *AccessVerifier, max int, clock func() time.Time) *CachedVerifier {
	return &CachedVerifier{v: v, cache: newTokenCache[*Claims](max, 0, clock)}
}

// Verify returns the claims of a valid access token, from the cache when
// this replica has verified the same token before and it has not expired.
// Every caller gets its own copy of the claims.
func (cv *CachedVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return cv.cache.through(token, (*Claims).clone, func() (*Claims, time.Time, error) {
		c, err := cv.v.Verify(ctx, token)
		if err != nil {
			return c, time.Time{}, err
		}
		return c, expiryOf(c.Expiry), nil
	})
}

// CachedSubjectVerifier remembers user tokens it has verified, like
// CachedVerifier, for at most a minute (and never past their exp): an agent
// that exchanges the same human's token again and again pays for one
// signature check a minute, and a key its identity provider withdraws
// stops working here within that minute.
type CachedSubjectVerifier struct {
	v     *SubjectVerifier
	cache *tokenCache[*SubjectClaims]
}

// NewCachedSubjectVerifier wraps v (clock defaults to time.Now).
func NewCachedSubjectVerifier(v *SubjectVerifier, clock func() time.Time) *CachedSubjectVerifier {
	return &CachedSubjectVerifier{v: v, cache: newTokenCache[*SubjectClaims](0, evidenceMaxAge, clock)}
}

// Verify is SubjectVerifier.Verify, from the cache when it can be.
func (cv *CachedSubjectVerifier) Verify(ctx context.Context, token string) (*SubjectClaims, error) {
	return cv.cache.through(token, (*SubjectClaims).clone, func() (*SubjectClaims, time.Time, error) {
		c, err := cv.v.Verify(ctx, token)
		if err != nil {
			return c, time.Time{}, err
		}
		return c, expiryOf(c.Expiry), nil
	})
}

// CachedAttestor remembers JWT attestations it has verified, for at most a
// minute and never past their exp. Evidence without a token (a unix peer,
// checked against the live process) is never cached.
type CachedAttestor struct {
	a     Attestor
	cache *tokenCache[Agent]
}

// NewCachedAttestor wraps a (clock defaults to time.Now).
func NewCachedAttestor(a Attestor, clock func() time.Time) *CachedAttestor {
	return &CachedAttestor{a: a, cache: newTokenCache[Agent](0, evidenceMaxAge, clock)}
}

var _ Attestor = (*CachedAttestor)(nil)

// Attest is the wrapped Attestor's Attest, from the cache when it can be.
func (ca *CachedAttestor) Attest(ctx context.Context, ev Evidence) (Agent, error) {
	if ev.Token == "" || ev.PeerPID != 0 {
		return ca.a.Attest(ctx, ev)
	}
	return ca.cache.through(ev.Token, Agent.clone, func() (Agent, time.Time, error) {
		ag, err := ca.a.Attest(ctx, ev)
		return ag, ag.Expiry, err
	})
}

// evidenceMaxAge bounds how long a verified user token or attestation is
// trusted from the cache: a key withdrawn at its issuer stops working
// within it.
const evidenceMaxAge = time.Minute

// tokenCache holds what verifying a token established, keyed by the
// token's SHA-256, until the token expires (or maxAge after it was
// verified, when set). It is bounded: when full it drops expired entries,
// or else an arbitrary tenth.
type tokenCache[V any] struct {
	now    func() time.Time
	max    int
	maxAge time.Duration
	mu     sync.Mutex
	items  map[[32]byte]cached[V]
}

type cached[V any] struct {
	v   V
	exp time.Time
}

func newTokenCache[V any](max int, maxAge time.Duration, clock func() time.Time) *tokenCache[V] {
	if max <= 0 {
		max = 10000
	}
	if clock == nil {
		clock = time.Now
	}
	return &tokenCache[V]{now: clock, max: max, maxAge: maxAge, items: map[[32]byte]cached[V]{}}
}

// through returns a copy of what the cache holds for token; otherwise it
// runs verify and, when that succeeds and names an expiry, keeps a copy
// until then. No caller ever holds the cached value itself.
func (tc *tokenCache[V]) through(token string, clone func(V) V, verify func() (V, time.Time, error)) (V, error) {
	if v, ok := tc.get(token); ok {
		return clone(v), nil
	}
	v, exp, err := verify()
	if err != nil || exp.IsZero() {
		return v, err
	}
	tc.put(token, clone(v), exp)
	return v, nil
}

// expiryOf is d as a time, or the zero time (never cached) when absent.
func expiryOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time()
}

// get returns the value cached for token, if it has not expired. The
// caller copies it before handing it out.
func (tc *tokenCache[V]) get(token string) (V, bool) {
	var zero V
	if len(token) > maxTokenBytesForCache {
		return zero, false
	}
	key := sha256.Sum256([]byte(token))
	now := tc.now()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	it, ok := tc.items[key]
	if ok && now.Before(it.exp) {
		return it.v, true
	}
	if ok {
		delete(tc.items, key)
	}
	return zero, false
}

// put caches v for token until exp (or maxAge from now, if sooner).
func (tc *tokenCache[V]) put(token string, v V, exp time.Time) {
	if len(token) > maxTokenBytesForCache {
		return
	}
	now := tc.now()
	if tc.maxAge > 0 && now.Add(tc.maxAge).Before(exp) {
		exp = now.Add(tc.maxAge)
	}
	key := sha256.Sum256([]byte(token))
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.items) >= tc.max {
		tc.evict(now)
	}
	tc.items[key] = cached[V]{v: v, exp: exp}
}

func (tc *tokenCache[V]) len() int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return len(tc.items)
}

// evict drops expired entries, and if none expired, an arbitrary tenth.
func (tc *tokenCache[V]) evict(now time.Time) {
	n := 0
	for k, it := range tc.items {
		if !now.Before(it.exp) {
			delete(tc.items, k)
			n++
		}
	}
	if n > 0 {
		return
	}
	drop := max(tc.max/10, 1)
	for k := range tc.items {
		if drop <= 0 {
			break
		}
		delete(tc.items, k)
		drop--
	}
}

// maxTokenBytesForCache: larger inputs are refused by the verifier anyway.
const maxTokenBytesForCache = 8 << 10

// clone copies claims deeply, so no caller can change what the cache (or
// another caller) holds.
func (c Claims) clone() *Claims {
	out := c
	out.Act, out.MayAct = c.Act.clone(), c.MayAct.clone()
	if c.AuthorizationDetails != nil {
		out.AuthorizationDetails = make(AuthorizationDetails, len(c.AuthorizationDetails))
		for i, d := range c.AuthorizationDetails {
			d.Domains = append([]string(nil), d.Domains...)
			out.AuthorizationDetails[i] = d
		}
	}
	for _, p := range []**jwt.NumericDate{&out.Expiry, &out.NotBefore, &out.IssuedAt} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return &out
}

func (a *Actor) clone() *Actor {
	if a == nil {
		return nil
	}
	return &Actor{Sub: a.Sub, Act: a.Act.clone()}
}

// clone copies subject claims deeply.
func (c SubjectClaims) clone() *SubjectClaims {
	out := c
	out.Audience = append(jwt.Audience(nil), c.Audience...)
	out.MayAct = c.MayAct.clone()
	for _, p := range []**jwt.NumericDate{&out.Expiry, &out.NotBefore, &out.IssuedAt} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return &out
}

// clone copies an agent deeply.
func (a Agent) clone() Agent {
	if a.Detail != nil {
		a.Detail = maps.Clone(a.Detail)
	}
	return a
}
