// Package sharedsecret gives every replica on one Redis the same random
// 32-byte secrets: the first replica to ask creates one, the others read
// it. It owns the keys tg:secret:<name> (see rediskey.Families), one per
// Name below, and nothing else.
//
// It never derives keys from a secret or uses one: its callers do (the
// idempotency store's HMAC, the approvals page's cookie and CSRF keys, the
// sandbox's credential key).
package sharedsecret

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Size is the length of every secret, in bytes.
const Size = 32

// Name names one secret.
type Name string

// The secrets there are. A name outside this list is refused, so the
// store's keys are exactly these.
const (
	// Idempotency keys the HMAC that turns a call's idempotency key into
	// the one sent upstream (gates/idempotency Config.Secret).
	Idempotency Name = "idempotency"
	// Credentials seals provider credentials and named secrets at rest, in
	// the sandbox only; production takes its key from the environment.
	Credentials Name = "credentials"
	// Approvals is the approvals page's root of its cookie and CSRF keys.
	Approvals Name = "approvals"
)

func (n Name) known() bool { return n == Idempotency || n == Credentials || n == Approvals }

// Store hands out the shared secrets. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("sharedsecret: no Redis client")
	}
	return &Store{rdb: rdb}, nil
}

func key(n Name) string { return "tg:secret:" + string(n) }

// Get returns the secret named n, creating it (SET NX, no expiry) when no
// replica has yet. Every caller on this Redis gets the same bytes.
func (s *Store) Get(ctx context.Context, n Name) ([]byte, error) {
	if !n.known() {
		return nil, fmt.Errorf("sharedsecret: no secret is named %q", string(n))
	}
	b := make([]byte, Size)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := s.rdb.SetNX(ctx, key(n), b, 0).Err(); err != nil {
		return nil, fmt.Errorf("sharedsecret: store %s in Redis: %w", key(n), err)
	}
	got, err := s.rdb.Get(ctx, key(n)).Bytes()
	switch {
	case err != nil:
		return nil, fmt.Errorf("sharedsecret: read %s from Redis: %w", key(n), err)
	case len(got) != Size:
		return nil, fmt.Errorf("sharedsecret: %s holds %d bytes, not %d", key(n), len(got), Size)
	}
	return got, nil
}
