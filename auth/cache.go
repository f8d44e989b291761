package auth

import (
	"context"
	"crypto/sha256"
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
	now   func() time.Time
	max   int
	mu    sync.Mutex
	items map[[32]byte]cached
}

type cached struct {
	c   Claims
	exp time.Time
}

// NewCachedVerifier wraps v with a cache of at most max tokens (default
// 10,000); clock defaults to time.Now.
func NewCachedVerifier(v *AccessVerifier, max int, clock func() time.Time) *CachedVerifier {
	if max <= 0 {
		max = 10000
	}
	if clock == nil {
		clock = time.Now
	}
	return &CachedVerifier{v: v, now: clock, max: max, items: map[[32]byte]cached{}}
}

// Verify returns the claims of a valid access token, from the cache when
// this replica has verified the same token before and it has not expired.
// Every caller gets its own copy of the claims.
func (cv *CachedVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytesForCache {
		return cv.v.Verify(ctx, token)
	}
	key := sha256.Sum256([]byte(token))
	now := cv.now()
	cv.mu.Lock()
	it, ok := cv.items[key]
	if ok && now.Before(it.exp) {
		cv.mu.Unlock()
		return it.c.clone(), nil
	}
	if ok {
		delete(cv.items, key)
	}
	cv.mu.Unlock()

	c, err := cv.v.Verify(ctx, token)
	if err != nil || c.Expiry == nil {
		return c, err
	}
	cv.mu.Lock()
	if len(cv.items) >= cv.max {
		cv.evict(now)
	}
	cv.items[key] = cached{c: *c.clone(), exp: c.Expiry.Time()}
	cv.mu.Unlock()
	return c, nil
}

// evict drops expired entries, and if none expired, an arbitrary tenth.
func (cv *CachedVerifier) evict(now time.Time) {
	n := 0
	for k, it := range cv.items {
		if !now.Before(it.exp) {
			delete(cv.items, k)
			n++
		}
	}
	if n > 0 {
		return
	}
	drop := max(cv.max/10, 1)
	for k := range cv.items {
		if drop <= 0 {
			break
		}
		delete(cv.items, k)
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
