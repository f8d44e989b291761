// Package mcpsession remembers which principal opened each MCP transport
// session: the Mcp-Session-Id a Streamable HTTP server hands out on
// initialize (protocol 2025-11-25 and before). The edge asks it so that an
// id alone never lets another principal's token read that session's stream
// or answer its elicitations.
//
// It owns the keys tg:mcpsess:<id> (see rediskey.Families) and nothing
// else. It never verifies a token: the edge passes it the principal it has
// already verified.
package mcpsession

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TTL is how long an MCP session's owner is remembered. A session used
// after that is refused, and the client initializes a new one.
const TTL = 24 * time.Hour

// Owners records the principal of each MCP session id. It is safe for
// concurrent use, and every replica may hold its own on the same Redis.
type Owners struct {
	rdb redis.UniversalClient
}

// New returns Owners on rdb.
func New(rdb redis.UniversalClient) (*Owners, error) {
	if rdb == nil {
		return nil, errors.New("mcpsession: no Redis client")
	}
	return &Owners{rdb: rdb}, nil
}

func key(id string) string { return "tg:mcpsess:" + id }

// Record notes that principal opened the session id. The first record
// stands (SET NX): a later one, by anyone, changes nothing, so a session
// cannot be taken over by recording it again.
func (o *Owners) Record(ctx context.Context, id, principal string) error {
	if err := o.rdb.SetNX(ctx, key(id), principal, TTL).Err(); err != nil {
		return fmt.Errorf("mcpsession: record the owner of a session: %w", err)
	}
	return nil
}

// Owner returns the principal that opened the session id, or "" when none
// is on record (never opened here, or past TTL). An error means Redis did
// not answer, and the caller refuses.
func (o *Owners) Owner(ctx context.Context, id string) (string, error) {
	p, err := o.rdb.Get(ctx, key(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("mcpsession: read the owner of a session: %w", err)
	}
	return p, nil
}
