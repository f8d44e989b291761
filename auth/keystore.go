package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// Redis layout of published signing keys, one sorted set per namespace:
//
//	tg:keys:<ns>   ZSET  member = public JWK JSON (kty OKP, crv Ed25519,
//	                              alg EdDSA, use sig, kid = RFC 7638 thumbprint)
//	                     score  = the key's expiry, Unix milliseconds
//
// A replica re-publishes its key every refresh interval, pushing its score
// forward; a dead replica's key falls out when its score passes. Readers
// take only members scored after now; publishers prune the past ones; the
// set's own TTL tracks its latest expiry so a namespace whose replicas are
// all gone disappears. One key per namespace keeps every operation on a
// single Redis Cluster slot, and a read of the whole namespace is one round
// trip.

// keysKey is the Redis key of a namespace's published keys.
func keysKey(ns Namespace) string { return "tg:keys:" + string(ns) }

// publishScript adds or refreshes one member (ZADD GT: a clock that stepped
// back never shortens a live key), prunes expired members and sets the
// set's TTL to its latest expiry.
//
// KEYS[1] set; ARGV[1] expiry ms; ARGV[2] JWK JSON; ARGV[3] now ms.
const publishScript = `
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  local ttl = math.floor(tonumber(top[2]) - tonumber(ARGV[3]))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 1
`

// publishedKey is a verified public key and when its publication expires.
type publishedKey struct {
	jwk     jose.JSONWebKey
	expires time.Time
}

// loadKeys reads the live keys of ns: one ZRANGEBYSCORE. Members that are
// not a well-formed Ed25519 public signing key whose kid is its thumbprint
// are skipped, so one bad entry cannot take verification down.
func loadKeys(ctx context.Context, rdb redis.UniversalClient, ns Namespace, now time.Time) ([]publishedKey, error) {
	zs, err := rdb.ZRangeByScoreWithScores(ctx, keysKey(ns), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("auth: read keys of %s: %w", ns, err)
	}
	out := make([]publishedKey, 0, len(zs))
	for _, z := range zs {
		s, ok := z.Member.(string)
		if !ok {
			continue
		}
		jwk, err := parsePublishedKey([]byte(s))
		if err != nil {
			continue
		}
		out = append(out, publishedKey{jwk: jwk, expires: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// parsePublishedKey accepts only what a KeyRing publishes.
func parsePublishedKey(b []byte) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		return jwk, err
	}
	if _, ok := jwk.Key.(ed25519.PublicKey); !ok {
		return jwk, fmt.Errorf("auth: published key %q is not an Ed25519 public key", jwk.KeyID)
	}
	if jwk.Algorithm != string(jose.EdDSA) || jwk.Use != "sig" {
		return jwk, fmt.Errorf("auth: published key %q is not an EdDSA signing key", jwk.KeyID)
	}
	kid, err := thumbprintKID(jwk)
	if err != nil || kid != jwk.KeyID {
		return jwk, fmt.Errorf("auth: published key %q: kid is not its thumbprint", jwk.KeyID)
	}
	return jwk, nil
}

// thumbprintKID is the RFC 7638 SHA-256 thumbprint, base64url: binding the
// kid to the key means two replicas can never publish different keys under
// one kid.
func thumbprintKID(jwk jose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// isThumbprintKID reports whether kid has the shape thumbprintKID produces:
// 43 base64url characters. Anything else is refused before touching Redis.
func isThumbprintKID(kid string) bool {
	if len(kid) != 43 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
