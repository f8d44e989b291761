package sessions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// maxAppendTries bounds the compare-and-set loop of Append. Appends within
// a process are serialised, so only other replicas can make a try fail.
const maxAppendTries = 50

// claimAfter is the number of lost tries after which an appender claims
// the next turn, and claimTTL how long a claim holds if its appender dies.
// Without claims a replica could lose every race to a busier one: the
// winner always sends its next append first.
const (
	claimAfter = 2
	claimTTL   = 100 * time.Millisecond
)

// Reply statuses of the check step (auditCheckLua).
const (
	appendStale    = 0 // the head moved; the reply carries the current one
	appendDone     = 1
	appendHeadless = 2 // entries exist but the head record is gone
	appendClaimed  = 3 // another appender has claimed the next turn
)

// auditCheckLua is the first step of every append: the chain's head must
// still be the one the entry was hashed on, and no other appender may have
// claimed the next turn. It writes nothing, except a claim when asked.
// KEYS: stream, head, claim. ARGV: prev hash, prev seq, genesis hash,
// appender token, "1" to claim the next turn when the head has moved,
// claim ttl ms. Reply: {status, head hash, head seq, head stream id}.
const auditCheckLua = `
local h = redis.call('HMGET', KEYS[2], 'hash', 'seq', 'id')
local head, seq, id = h[1], h[2], h[3]
if not head then
  -- A missing head over existing entries is tampering or data loss:
  -- starting a new chain would hide it.
  if redis.call('EXISTS', KEYS[1]) == 1 then return {2, '', '0', ''} end
  head, seq, id = ARGV[3], '0', ''
end
id = id or ''
local claim = redis.call('GET', KEYS[3])
if claim and claim ~= ARGV[4] then return {3, head, seq, id} end
if head ~= ARGV[1] or seq ~= ARGV[2] then
  if ARGV[5] == '1' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[6]) end
  return {0, head, seq, id}
end
return {1, head, seq, id}
`

// auditWriteLua is the last step of every append: it adds the entry and
// moves the head. The fused script reaches it only when the check and
// every step between said go on.
// KEYS: stream, head, claim. ARGV: hash, seq, entry JSON, max length (0: no
// trimming), appender token. Reply: {1, hash, seq, stream id}.
const auditWriteLua = `
local nid
if tonumber(ARGV[4]) > 0 then
  nid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'entry', ARGV[3], 'hash', ARGV[1])
else
  nid = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[3], 'hash', ARGV[1])
end
redis.call('HSET', KEYS[2], 'hash', ARGV[1], 'seq', ARGV[2], 'id', nid)
if redis.call('GET', KEYS[3]) == ARGV[5] then redis.call('DEL', KEYS[3]) end
return {1, ARGV[1], ARGV[2], nid}
`

// Append adds e to the end of its principal's chain (the system chain when
// e names no principal) and returns it as stored: Seq, Prev, Hash and ID
// filled, Time (when zero) and Nonce (when empty) set. It is Fused with no
// other step.
func (a *Audit) Append(ctx context.Context, e Entry) (Entry, error) {
	f, err := a.Fused(ctx, e, a.rdb)
	return f.Entry, err
}

// FusedResult is what Fused answers.
type FusedResult struct {
	// Entry is the entry as stored; its Hash is empty when a step stopped
	// the script before the entry was written.
	Entry Entry
	// Steps is the fused result of the caller's steps alone: Replies[i]
	// is the reply of steps[i], Stopped the index of the step that said
	// stop (-1: all went on, and the entry is written).
	Steps fuse.Result
	// Replayed: the script had already run once and only its reply was
	// lost (go-redis resent it after a network error). The entry is
	// written and every step ran, but their replies are gone.
	Replayed bool
}

// Fused appends e in the same script, in the same round trip, as steps:
// the chain's head is checked first, then steps run in order, and the
// entry is written last, only when every step said go on. When a step
// stops the script, nothing is appended and FusedResult.Steps says which
// step and why. Every key of steps must share e.Principal's hash tag
// (keyspace "<prefix>:{P}:"), so the script touches one Redis Cluster slot.
//
// When another replica appended first, the head check fails before any
// step runs, and Fused rehashes on the new head and runs the whole script
// again, up to 50 times. Within one process the appends of a chain take
// turns, so one principal's fused steps are serialised in this process. An
// appender that has lost twice claims the next turn (for at most 100ms),
// so a replica cannot be starved by a busier one.
//
// Retries. go-redis resends a command after a network error. If the script
// had already run, the resent one finds the head equal to this entry's own
// hash (unique thanks to the nonce) and Fused reports success with
// Replayed set: no duplicate entry, and no step runs twice. If Fused itself
// fails with fault.Unavailable after the script ran (a timeout, a lost
// reply) and the caller appends again, the entry is recorded twice, with
// different Seq and the same content; with the same caller-chosen Nonce the
// duplicate is exact and easy to spot. Either way the chain stays intact.
//
// Errors: fault.InvalidArgument for a malformed entry (nothing recorded),
// fault.Unavailable when Redis errs or times out or the chain stays
// contended, fault.Internal when the head record is missing over existing
// entries (run Verify).
func (a *Audit) Fused(ctx context.Context, e Entry, rdb redis.Scripter, steps ...fuse.Step) (FusedResult, error) {
	e, err := prepareEntry(e, a.cfg.Now())
	if err != nil {
		return FusedResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	if err := a.indexed(ctx, e.Principal); err != nil {
		return FusedResult{}, err
	}
	c := a.chainFor(e.Principal)
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return FusedResult{}, unavailable("audit append: wait for turn", ctx.Err(), msgAuditWriteDown)
	}
	defer func() { <-c.sem }()

	token := newNonce()
	head, lost := c.last, 0
	for try := 0; try < maxAppendTries; try++ {
		e.Prev, e.Seq = head.hash, head.seq+1
		body, err := canonical(e)
		if err != nil {
			return FusedResult{}, internal("audit append", "encode: %v", err)
		}
		e.Hash = chainHash(e.Prev, body)
		claim := "0"
		if lost >= claimAfter {
			claim = "1"
		}
		all := make([]fuse.Step, 0, len(steps)+2)
		all = append(all, fuse.Step{Name: "audit_check", Body: auditCheckLua, Continue: "r[1] == 1",
			Keys: []string{c.stream, c.head, c.claim},
			Args: []any{head.hash, strconv.FormatInt(head.seq, 10), GenesisHash, token, claim, claimTTL.Milliseconds()}})
		all = append(all, steps...)
		all = append(all, fuse.Step{Name: "audit_write", Body: auditWriteLua, Continue: "true",
			Keys: []string{c.stream, c.head, c.claim},
			Args: []any{e.Hash, strconv.FormatInt(e.Seq, 10), body, a.cfg.MaxLen, token}})
		res, err := fuse.Run(ctx, rdb, all...)
		if err != nil {
			return FusedResult{}, unavailable("audit append", err, msgAuditWriteDown)
		}
		status, got, err := parseHead(res.Replies[0])
		if err != nil {
			return FusedResult{}, err
		}
		inner := fuse.Result{Stopped: -1}
		if len(res.Replies) > 1 {
			inner.Replies = res.Replies[1:min(len(res.Replies), len(steps)+1)]
		}
		switch {
		case status == appendDone && res.Stopped == -1:
			_, w, err := parseHead(res.Replies[len(res.Replies)-1])
			if err != nil {
				return FusedResult{}, err
			}
			c.last = w
			e.ID = w.id
			return FusedResult{Entry: e, Steps: inner}, nil
		case status == appendDone:
			// A step stopped the script: nothing was appended.
			c.last = got
			inner.Stopped = res.Stopped - 1
			e.Prev, e.Seq, e.Hash = "", 0, ""
			return FusedResult{Entry: e, Steps: inner}, nil
		case status != appendHeadless && got.hash == e.Hash:
			// Our own hash on top: an earlier send of this very script
			// went through and only its reply was lost.
			c.last = got
			e.ID = got.id
			return FusedResult{Entry: e, Steps: fuse.Result{Stopped: -1}, Replayed: true}, nil
		case status == appendStale:
			c.last, head = got, got
			lost++
		case status == appendClaimed:
			c.last, head = got, got
			if err := jitter(ctx, try+1); err != nil {
				return FusedResult{}, unavailable("audit append: back off", err, msgAuditWriteDown)
			}
		default:
			return FusedResult{}, fault.Wrap(errors.New("sessions: audit append: head record missing over existing entries"), fault.Internal,
				"the audit trail's head record is missing although it has entries, so nothing was recorded. Run `tollgate audit verify` and contact the operator.")
		}
	}
	return FusedResult{}, unavailable("audit append", fmt.Errorf("chain still contended after %d tries", maxAppendTries), msgAuditWriteDown)
}

// parseHead reads {status, head hash, head seq, head stream id}.
func parseHead(r any) (int64, chainHead, error) {
	reply, ok := r.([]any)
	if !ok || len(reply) != 4 {
		return 0, chainHead{}, internal("audit append", "script replied %v", r)
	}
	status, ok := reply[0].(int64)
	hash, ok1 := reply[1].(string)
	seqText, ok2 := reply[2].(string)
	id, ok3 := reply[3].(string)
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || !ok1 || !ok2 || !ok3 || err != nil || status < appendStale || status > appendClaimed {
		return 0, chainHead{}, internal("audit append", "script replied %v", r)
	}
	return status, chainHead{hash: hash, seq: seq, id: id}, nil
}

// jitter waits a random time that grows with the number of tries, so that
// replicas racing for the head spread out.
func jitter(ctx context.Context, try int) error {
	limit := time.Duration(min(try, 20)) * 250 * time.Microsecond
	t := time.NewTimer(rand.N(limit) + time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
