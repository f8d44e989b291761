// Package mcpsession remembers which principal opened each MCP transport
// session: the Mcp-Session-Id a Streamable HTTP server hands out on
// initialize (protocol 2025-11-25 and before). The edge asks it so that an
// id alone never lets another principal's token read that session's stream
// or answer its elicitations.
//
// It also bounds how many sessions one principal may have open: a sorted
// set per principal (tg:{P}:mcpsess) scores each session by when it was
// last used, and a session unused for longer than the idle TTL no longer
// counts (the MCP server closes it after the same TTL).
//
// It owns the keys tg:mcpsess:<id> and tg:{P}:mcpsess (see
// rediskey.Families) and nothing else. It never verifies a token: the edge passes it the principal it has
// already verified.
package mcpsession

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
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

// openKey is the principal's sorted set of open sessions.
func openKey(principal string) string {
	return "tg:{" + rediskey.EscapePrincipal(principal) + "}:mcpsess"
}

// reserveLua drops the principal's sessions idle for longer than the idle
// TTL and, while fewer than the limit remain, adds a reservation.
// KEYS: the open set. ARGV: now (ms), idle (ms), limit, reservation.
var reserveLua = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then return {0, n} end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, n + 1}
`)

// Reservation is a place for one new session of a principal, taken
// before the MCP server opens it. Record or Release it once.
type Reservation struct {
	principal, id string
}

// Reserve takes a place for a new session of principal, or reports full
// (ok false, nothing taken) when the principal already has limit sessions
// used within idle. One round trip.
func (o *Owners) Reserve(ctx context.Context, principal string, limit int, idle time.Duration) (r Reservation, ok bool, err error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	r = Reservation{principal: principal, id: "reserved:" + hex.EncodeToString(b)}
	now := time.Now().UnixMilli()
	res, err := reserveLua.Run(ctx, o.rdb, []string{openKey(principal)}, now, idle.Milliseconds(), limit, r.id).Int64Slice()
	if err != nil {
		return Reservation{}, false, fmt.Errorf("mcpsession: count the principal's sessions: %w", err)
	}
	return r, res[0] == 1, nil
}

// Opened turns the reservation into the session id the server issued and
// records its owner (as Record). One round trip.
func (o *Owners) Opened(ctx context.Context, r Reservation, id string, idle time.Duration) error {
	k := openKey(r.principal)
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key(id), r.principal, TTL)
		p.ZRem(ctx, k, r.id)
		p.ZAdd(ctx, k, redis.Z{Score: float64(time.Now().UnixMilli()), Member: id})
		p.PExpire(ctx, k, idle)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mcpsession: record a new session: %w", err)
	}
	return nil
}

// Release gives back a reservation no session came of (the initialize was
// refused).
func (o *Owners) Release(ctx context.Context, r Reservation) error {
	if err := o.rdb.ZRem(ctx, openKey(r.principal), r.id).Err(); err != nil {
		return fmt.Errorf("mcpsession: release a reservation: %w", err)
	}
	return nil
}

// Closed ends a session the client closed (DELETE): it leaves its
// principal's open sessions and loses its owner, so that its id is
// refused from now on, on every replica.
func (o *Owners) Closed(ctx context.Context, principal, id string) error {
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, openKey(principal), id)
		p.Del(ctx, key(id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("mcpsession: forget a closed session: %w", err)
	}
	return nil
}

// touchLua notes that a session in a principal's open set was used now,
// when it was used within idle; a session idle for longer (or closed, or
// not in the set) stays as it is. KEYS: the open set. ARGV: id, now (ms),
// idle (ms). Returns 1 when the session is open.
var touchLua = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 1
`)

// Used returns the owner of session id, as Owner, and whether it is
// still open for principal: in principal's open sessions and used within
// idle (a session closed with DELETE, or idle for longer, is not). An
// open session is noted as used now, so it keeps counting against its
// principal's limit; a foreign id changes nothing. One round trip (a
// pipeline: the owner key and the open set may sit on different Cluster
// nodes).
//
// A session recorded with Record, outside any limit, is never open.
func (o *Owners) Used(ctx context.Context, id, principal string, idle time.Duration) (owner string, open bool, err error) {
	var get *redis.StringCmd
	var touch *redis.Cmd
	_, err = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key(id))
		touch = touchLua.Eval(ctx, p, []string{openKey(principal)}, id, time.Now().UnixMilli(), idle.Milliseconds())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, fmt.Errorf("mcpsession: read the owner of a session: %w", err)
	}
	owner, err = get.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("mcpsession: read the owner of a session: %w", err)
	}
	n, _ := touch.Int64()
	return owner, owner == principal && n == 1, nil
}

// Count returns how many sessions principal has open (used within idle).
func (o *Owners) Count(ctx context.Context, principal string, idle time.Duration) (int64, error) {
	min := fmt.Sprint(time.Now().UnixMilli() - idle.Milliseconds())
	n, err := o.rdb.ZCount(ctx, openKey(principal), min, "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("mcpsession: count the principal's sessions: %w", err)
	}
	return n, nil
}

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
