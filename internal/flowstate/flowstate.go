// Package flowstate keeps what a URL-mode flow needs on the server between
// its start and its callback: the OAuth state and PKCE verifier of a
// Cloudflare consent, the Checkout session and customer of a Stripe billing
// setup; and the state, nonce and PKCE verifier of a human's sign-in to the
// approvals page at the identity provider. A record is keyed by the approval
// the flow continues (a sign-in's by "signin:" and its state), lives a few
// minutes and never leaves the server.
//
// It owns the keys tg:flow:<approval id> (see rediskey.Families) and
// nothing else. It never decides whether a callback may complete: the flows
// check the browser's signed flow cookie and the record's principal.
package flowstate

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// timeout bounds each Redis call: a flow's page does not wait longer.
const timeout = 2 * time.Second

// Record is what a flow keeps server-side.
type Record struct {
	Principal string `json:"p"`
	Kind      string `json:"k"`
	State     string `json:"s,omitempty"`
	Verifier  string `json:"v,omitempty"`
	Session   string `json:"cs,omitempty"`
	Customer  string `json:"cu,omitempty"`
	Email     string `json:"em,omitempty"` // the customer's e-mail as Stripe holds it
	// A sign-in's: its OpenID nonce, the page to return to, and the
	// browser it was started in (its pre-session cookie).
	Nonce   string `json:"n,omitempty"`
	Next    string `json:"nx,omitempty"`
	Browser string `json:"b,omitempty"`
}

// Store keeps flow records. It is safe for concurrent use, and every
// replica may hold its own on the same Redis: a callback may land on any.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a Store on rdb whose records live ttl after each Save.
func New(rdb redis.UniversalClient, ttl time.Duration) (*Store, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("flowstate: no Redis client")
	case ttl <= 0:
		return nil, errors.New("flowstate: the TTL must be positive")
	}
	return &Store{rdb: rdb, ttl: ttl}, nil
}

func key(approval string) string { return "tg:flow:" + approval }

// Save records rec for the flow of approval, replacing any record it had.
// Refusals: fault.Unavailable.
func (s *Store) Save(ctx context.Context, approval string, rec Record) error {
	b, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.rdb.Set(ctx, key(approval), b, s.ttl).Err(); err != nil {
		return fault.Wrap(err, fault.Unavailable, "the store is unavailable; nothing was done")
	}
	return nil
}

// Get reads the record of approval's flow. Refusals: fault.NotFound (no
// flow, or past its TTL), fault.Unavailable, fault.Internal (corrupt).
func (s *Store) Get(ctx context.Context, approval string) (Record, error) {
	return s.read(ctx, approval, false)
}

// Take reads and removes the record of approval's flow in one step, so that
// a flow completes once. Refusals as Get.
func (s *Store) Take(ctx context.Context, approval string) (Record, error) {
	return s.read(ctx, approval, true)
}

func (s *Store) read(ctx context.Context, approval string, take bool) (Record, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var raw string
	var err error
	if take {
		raw, err = s.rdb.GetDel(ctx, key(approval)).Result()
	} else {
		raw, err = s.rdb.Get(ctx, key(approval)).Result()
	}
	if errors.Is(err, redis.Nil) {
		return Record{}, fault.New(fault.NotFound, "no flow")
	}
	if err != nil {
		return Record{}, fault.Wrap(err, fault.Unavailable, "the store is unavailable; nothing was done")
	}
	var rec Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return Record{}, fault.Wrap(err, fault.Internal, "a flow record is corrupt")
	}
	return rec, nil
}
