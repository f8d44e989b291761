package sessions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
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

// Reply statuses of appendLua.
const (
	appendStale    = 0 // the head moved; the reply carries the current one
	appendDone     = 1
	appendHeadless = 2 // entries exist but the head record is gone
	appendClaimed  = 3 // another appender has claimed the next turn
)

// appendLua appends one entry if the chain's head is still the one the
// entry was hashed on and no other appender has claimed the next turn.
// KEYS: stream, head, claim. ARGV: prev hash, prev seq, hash, seq, entry
// JSON, max length (0: no trimming), genesis hash, appender token, "1" to
// claim the next turn when the head has moved, claim ttl ms.
// Reply: {status, head hash, head seq, head stream id}.
const appendLua = `
local h = redis.call('HMGET', KEYS[2], 'hash', 'seq', 'id')
local head, seq, id = h[1], h[2], h[3]
if not head then
  -- A missing head over existing entries is tampering or data loss:
  -- starting a new chain would hide it.
  if redis.call('EXISTS', KEYS[1]) == 1 then return {2, '', '0', ''} end
  head, seq, id = ARGV[7], '0', ''
end
id = id or ''
local claim = redis.call('GET', KEYS[3])
if claim and claim ~= ARGV[8] then return {3, head, seq, id} end
if head ~= ARGV[1] or seq ~= ARGV[2] then
  if ARGV[9] == '1' then redis.call('SET', KEYS[3], ARGV[8], 'PX', ARGV[10]) end
  return {0, head, seq, id}
end
local nid
if tonumber(ARGV[6]) > 0 then
  nid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'entry', ARGV[5], 'hash', ARGV[3])
else
  nid = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[5], 'hash', ARGV[3])
end
redis.call('HSET', KEYS[2], 'hash', ARGV[3], 'seq', ARGV[4], 'id', nid)
if claim then redis.call('DEL', KEYS[3]) end
return {1, ARGV[3], ARGV[4], nid}
`

// Append adds e to the end of the chain and returns it as stored: Seq,
// Prev, Hash and ID filled, Time (when zero) and Nonce (when empty) set.
//
// The hash is computed here and the entry appended by a compare-and-set
// script; when another replica appended first, Append rehashes on the new
// head and tries again, up to 50 times, so concurrent appenders keep one
// linear chain. Within one process appends take turns. An appender that
// has lost twice claims the next turn (for at most 100ms), so a replica
// cannot be starved by a busier one; the others back off with jitter.
//
// Retries. go-redis resends a command after a network error. If the script
// had already run, the resent one finds the head equal to this entry's own
// hash (unique thanks to the nonce) and Append reports success: no
// duplicate. If Append itself fails with fault.Unavailable after the script
// ran (a timeout, a lost reply) and the caller appends again, the entry is
// recorded twice, with different Seq and the same content; with the same
// caller-chosen Nonce the duplicate is exact and easy to spot. Either way
// the chain stays intact: a retry can duplicate an entry, never break the
// chain.
//
// Errors: fault.InvalidArgument for a malformed entry (nothing recorded),
// fault.Unavailable when Redis errs or times out or the chain stays
// contended, fault.Internal when the head record is missing over existing
// entries (run Verify).
func (a *Audit) Append(ctx context.Context, e Entry) (Entry, error) {
	e, err := prepareEntry(e, a.cfg.Now())
	if err != nil {
		return Entry{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return Entry{}, unavailable("audit append: wait for turn", ctx.Err(), msgAuditWriteDown)
	}
	defer func() { <-a.sem }()

	token := newNonce()
	head, lost := a.last, 0
	for try := 0; try < maxAppendTries; try++ {
		e.Prev, e.Seq = head.hash, head.seq+1
		body, err := canonical(e)
		if err != nil {
			return Entry{}, internal("audit append", "encode: %v", err)
		}
		e.Hash = chainHash(e.Prev, body)
		status, got, err := a.tryAppend(ctx, head, e, body, token, lost >= claimAfter)
		if err != nil {
			return Entry{}, err
		}
		switch {
		case status == appendDone, status != appendHeadless && got.hash == e.Hash:
			// Our own hash on top: an earlier send of this very entry went
			// through and only its reply was lost.
			a.last = got
			e.ID = got.id
			return e, nil
		case status == appendStale:
			a.last, head = got, got
			lost++
		case status == appendClaimed:
			a.last, head = got, got
			if err := jitter(ctx, try+1); err != nil {
				return Entry{}, unavailable("audit append: back off", err, msgAuditWriteDown)
			}
		default:
			return Entry{}, fault.Wrap(errors.New("sessions: audit append: head record missing over existing entries"), fault.Internal,
				"the audit trail's head record is missing although it has entries, so nothing was recorded. Run `tollgate audit verify` and contact the operator.")
		}
	}
	return Entry{}, unavailable("audit append", fmt.Errorf("chain still contended after %d tries", maxAppendTries), msgAuditWriteDown)
}

// tryAppend runs appendLua once and parses its reply.
func (a *Audit) tryAppend(ctx context.Context, head chainHead, e Entry, body []byte, token string, claim bool) (int64, chainHead, error) {
	wantClaim := "0"
	if claim {
		wantClaim = "1"
	}
	reply, err := a.script.Run(ctx, a.rdb, []string{a.stream, a.head, a.claim},
		head.hash, strconv.FormatInt(head.seq, 10), e.Hash, strconv.FormatInt(e.Seq, 10),
		body, a.cfg.MaxLen, GenesisHash, token, wantClaim, claimTTL.Milliseconds()).Slice()
	if err != nil {
		return 0, chainHead{}, unavailable("audit append", err, msgAuditWriteDown)
	}
	if len(reply) != 4 {
		return 0, chainHead{}, internal("audit append", "script replied %v", reply)
	}
	status, ok := reply[0].(int64)
	hash, ok1 := reply[1].(string)
	seqText, ok2 := reply[2].(string)
	id, ok3 := reply[3].(string)
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || !ok1 || !ok2 || !ok3 || err != nil || status < appendStale || status > appendClaimed {
		return 0, chainHead{}, internal("audit append", "script replied %v", reply)
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
