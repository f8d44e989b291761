package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Entry is one line of the audit trail (SPEC §10): who did what, for whom,
// through which session, and what was decided.
//
// An entry never holds a secret. Tokens are never stored, only their id
// (JTI) or a digest; tool arguments only as ArgsDigest (see DigestArgs);
// Reason and Detail are for decision codes and identifiers, never for
// request bodies, credentials or provider responses.
//
// Append fills Seq, Prev, Hash, ID and, when empty, Time and Nonce; any value
// the caller puts in Seq, Prev, Hash or ID is ignored.
type Entry struct {
	// ID is the Redis Stream id of the entry, filled on append and on read.
	// It is not part of the hash.
	ID string `json:"id,omitempty"`
	// Seq numbers the chain from 1 with no gaps.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Event says what happened: exchange, policy, tool_call, gate, hold,
	// commit, release, revoke, … ([a-z0-9_.], 1-64 bytes).
	Event     string `json:"event"`
	Principal string `json:"principal,omitempty"`
	// Actors is the delegation chain, the acting agent first.
	Actors        []string `json:"actors,omitempty"`
	ClientID      string   `json:"client_id,omitempty"`
	Session       string   `json:"session,omitempty"`
	ParentSession string   `json:"parent_session,omitempty"`
	// JTI is the id of the token used, never the token.
	JTI  string `json:"jti,omitempty"`
	Tool string `json:"tool,omitempty"`
	// ArgsDigest is a digest of the tool's canonical arguments,
	// "<alg>:<lowercase hex>" (DigestArgs), never the arguments.
	ArgsDigest string `json:"args_digest,omitempty"`
	// Decision is allow, deny, ok or error (or empty).
	Decision string `json:"decision,omitempty"`
	// Code is the stable decision code (cap_exceeded, insufficient_scope, …).
	Code              string            `json:"code,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	PolicyIDs         []string          `json:"policy_ids,omitempty"`
	Amount            *money.Money      `json:"amount,omitempty"`
	Provider          string            `json:"provider,omitempty"`
	ProviderRequestID string            `json:"provider_request_id,omitempty"`
	Detail            map[string]string `json:"detail,omitempty"`
	// TraceID is the OpenTelemetry trace id of the call that wrote the
	// entry (the same one its log line carries), when it had one.
	TraceID string `json:"trace_id,omitempty"`
	// Nonce makes every entry's hash unique, so that an append whose reply
	// was lost is recognised when it is retried (see Audit.Append). A
	// caller may set it (8-64 of [A-Za-z0-9_-]) to make its own retries
	// recognisable as duplicates; otherwise Append draws 128 random bits.
	Nonce string `json:"nonce"`
	// Prev is the Hash of the entry before (GenesisHash for the first).
	Prev string `json:"prev"`
	// Hash is hex(SHA-256(Prev || canonical JSON of the entry without ID
	// and Hash)).
	Hash string `json:"hash"`
}

// Decisions an Entry may record.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionOK    = "ok"
	DecisionError = "error"
)

// GenesisHash is the Prev of the first entry of the chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// DefaultAuditTimeout bounds one Append, and each Redis call of the readers.
const DefaultAuditTimeout = 2 * time.Second

// AuditConfig configures an Audit. The zero value is valid: every field
// has a default.
type AuditConfig struct {
	// Prefix starts the audit keys ("tg"), with the same rules as
	// Config.Prefix.
	Prefix string
	// Now is the clock that stamps Entry.Time (time.Now).
	Now func() time.Time
	// Timeout bounds one Append including its retries, and each Redis call
	// of Verify, Export and ForSessions (2s).
	Timeout time.Duration
	// MaxLen caps the stream at about MaxLen entries (XADD MAXLEN ~); the
	// oldest are trimmed. 0 keeps every entry. With a cap, Verify takes the
	// oldest remaining entry as the start of the chain, so it can no longer
	// tell trimming from removal at the very start; export before trimming
	// if that matters. Verify must run with the same MaxLen as the
	// appenders: with 0 it reports a trimmed stream as broken.
	MaxLen int64
}

// Validate reports the first problem with c, naming the field and the fix.
func (c AuditConfig) Validate() error {
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		return fmt.Errorf("sessions: AuditConfig.Prefix %q: use 1-64 letters, digits or _.:- (no braces)", c.Prefix)
	}
	if c.Timeout < 0 {
		return errors.New("sessions: AuditConfig.Timeout is negative: use 0 for the 2s default or a positive duration")
	}
	if c.MaxLen < 0 {
		return errors.New("sessions: AuditConfig.MaxLen is negative: use 0 to keep every entry or a positive length")
	}
	return nil
}

func (c AuditConfig) withDefaults() AuditConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultAuditTimeout
	}
	return c
}

// Audit is the hash-chained audit trail (SPEC §10): one chain per
// principal, plus one "system" chain for entries that name no principal.
// It is safe for concurrent use, and any number of replicas may append to
// the same Redis: each chain stays linear.
//
// # Redis layout
//
// With the default prefix "tg":
//
//	tg:{P}:audit            stream  principal P's entries: fields "entry" (canonical JSON) and "hash"
//	tg:{P}:audit:head       hash    hash, seq and stream id of P's last entry
//	tg:{P}:audit:claim      string  token of an appender that lost twice and claimed the next turn (PX 100ms)
//	tg:audit:{chain}        stream  the system chain (entries without a principal), with :head and :claim
//	tg:audit:chains         zset    every principal with a chain, score = first append (ms)
//
// A principal's chain shares the hash tag of its sessions, holds and
// idempotency records, so the guard appends an entry in the same script
// (one round trip, one Redis Cluster slot) as the step it records; see
// Fused.
//
// # Chaining
//
// An entry's hash is computed in Go from the head of its chain this
// process saw last, and a Lua script appends it only if the head is still
// that one (compare and set); otherwise the script answers the current
// head and the append retries on it. Within one process the appends of a
// chain are serialised, so the only contention is between replicas, and a
// replica that keeps losing claims the next turn.
//
// Each chain detects an entry removed, inserted, reordered or altered, and
// the end cut off, by anyone who does not recompute every later hash. It is
// not keyed: whoever can write Redis can rewrite a whole chain, or drop a
// principal from the index. To detect that too, keep VerifyResult.Head (or
// exports) somewhere Redis writers cannot reach and compare later.
type Audit struct {
	rdb   redis.UniversalClient
	cfg   AuditConfig
	keys  keyspace
	index string

	system *chain
	mu     sync.Mutex
	chains map[string]*chain // by principal
	known  map[string]bool   // principals this process has put in the index
}

// chain is one principal's chain (or the system chain): its keys, the turn
// of this process's appenders, and the head this process saw last (only
// touched while holding sem).
type chain struct {
	principal           string
	stream, head, claim string
	sem                 chan struct{}
	last                chainHead
}

// chainHead is the state of the head key.
type chainHead struct {
	hash string
	seq  int64
	id   string
}

// maxCachedChains bounds the chains a process keeps the head of; beyond
// it, idle ones are forgotten (their next append costs one more try).
const maxCachedChains = 1 << 16

// NewAudit returns an Audit on rdb. cfg is validated; zero fields take
// their defaults.
func NewAudit(rdb redis.UniversalClient, cfg AuditConfig) (*Audit, error) {
	if rdb == nil {
		return nil, errors.New("sessions: NewAudit needs a Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base := cfg.Prefix + ":audit:{chain}"
	return &Audit{
		rdb:    rdb,
		cfg:    cfg,
		keys:   keyspace{prefix: cfg.Prefix},
		index:  cfg.Prefix + ":audit:chains",
		system: newChain("", base),
		chains: make(map[string]*chain),
		known:  make(map[string]bool),
	}, nil
}

func newChain(principal, stream string) *chain {
	return &chain{principal: principal, stream: stream, head: stream + ":head", claim: stream + ":claim",
		sem: make(chan struct{}, 1), last: chainHead{hash: GenesisHash}}
}

// chainFor returns the chain entries of principal go to: the principal's
// own, or the system chain for "".
func (a *Audit) chainFor(principal string) *chain {
	if principal == "" {
		return a.system
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.chains[principal]; ok {
		return c
	}
	if len(a.chains) >= maxCachedChains {
		for p, c := range a.chains {
			if len(c.sem) == 0 { // idle: nobody appends to it now
				delete(a.chains, p)
				break
			}
		}
	}
	c := newChain(principal, a.keys.base(principal)+"audit")
	a.chains[principal] = c
	return c
}

// indexed records principal in the chain index, once per process.
func (a *Audit) indexed(ctx context.Context, principal string) error {
	if principal == "" {
		return nil
	}
	a.mu.Lock()
	done := a.known[principal]
	a.mu.Unlock()
	if done {
		return nil
	}
	err := a.rdb.ZAddNX(ctx, a.index, redis.Z{Score: float64(a.cfg.Now().UnixMilli()), Member: principal}).Err()
	if err != nil {
		return unavailable("audit index", err, msgAuditWriteDown)
	}
	a.mu.Lock()
	if len(a.known) >= maxCachedChains {
		clear(a.known)
	}
	a.known[principal] = true
	a.mu.Unlock()
	return nil
}

// chainsToRead lists the chains to read: the system chain and every
// indexed principal's, or just one principal's.
func (a *Audit) chainsToRead(ctx context.Context, principal string) ([]*chain, error) {
	if principal != "" {
		return []*chain{newChain(principal, a.keys.base(principal)+"audit")}, nil
	}
	out := []*chain{newChain("", a.system.stream)}
	var cursor uint64
	for {
		rctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		ps, next, err := a.rdb.ZScan(rctx, a.index, cursor, "", 1000).Result()
		cancel()
		if err != nil {
			return nil, unavailable("audit index", err, msgAuditReadDown)
		}
		for i := 0; i+1 < len(ps); i += 2 {
			out = append(out, newChain(ps[i], a.keys.base(ps[i])+"audit"))
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	// ZSCAN may return a member twice; a chain is read once.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c.stream] {
			seen[c.stream] = true
			uniq = append(uniq, c)
		}
	}
	return uniq, nil
}

// Public messages for a failed audit operation.
const (
	msgAuditWriteDown = "the audit trail could not be reached, so this action may not have been recorded. Retry shortly; a retried entry shows up as a duplicate, never as a broken chain."
	msgAuditReadDown  = "the audit trail could not be reached; nothing was changed. Retry shortly."
)
