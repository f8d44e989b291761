package sessions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// appendBatchLua is appendLua for several entries at once: the first is
// hashed on the head, each next one on the one before.
// KEYS: stream, head, claim. ARGV: prev hash, prev seq, genesis hash, max
// length, appender token, "1" to claim, claim ttl ms, n, then n times
// (hash, seq, entry JSON). Reply as appendLua's, for the last entry.
const appendBatchLua = `
local h = redis.call('HMGET', KEYS[2], 'hash', 'seq', 'id')
local head, seq, id = h[1], h[2], h[3]
if not head then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {2, '', '0', ''} end
  head, seq, id = ARGV[3], '0', ''
end
id = id or ''
local claim = redis.call('GET', KEYS[3])
if claim and claim ~= ARGV[5] then return {3, head, seq, id} end
if head ~= ARGV[1] or seq ~= ARGV[2] then
  if ARGV[6] == '1' then redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[7]) end
  return {0, head, seq, id}
end
local n = tonumber(ARGV[8])
local nid, hash, s
for i = 0, n - 1 do
  hash, s = ARGV[9 + 3*i], ARGV[10 + 3*i]
  if tonumber(ARGV[4]) > 0 then
    nid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'entry', ARGV[11 + 3*i], 'hash', hash)
  else
    nid = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[11 + 3*i], 'hash', hash)
  end
end
redis.call('HSET', KEYS[2], 'hash', hash, 'seq', s, 'id', nid)
if claim then redis.call('DEL', KEYS[3]) end
return {1, hash, s, nid}
`

var batchScript = redis.NewScript(appendBatchLua)

// AppendBatch appends entries in order as one link of the chain per entry,
// in one round trip when no other replica appends meanwhile. Its retry
// semantics are Append's: a retry can duplicate entries, never break the
// chain.
func (a *Audit) AppendBatch(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := a.cfg.Now()
	for i := range entries {
		e, err := prepareEntry(entries[i], now)
		if err != nil {
			return err
		}
		entries[i] = e
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return unavailable("audit append: wait for turn", ctx.Err(), msgAuditWriteDown)
	}
	defer func() { <-a.sem }()

	token := newNonce()
	head, lost := a.last, 0
	for try := 0; try < maxAppendTries; try++ {
		args := []any{head.hash, strconv.FormatInt(head.seq, 10), GenesisHash, a.cfg.MaxLen, token, "0", claimTTL.Milliseconds(), len(entries)}
		if lost >= claimAfter {
			args[5] = "1"
		}
		prev, seq := head.hash, head.seq
		for i := range entries {
			seq++
			entries[i].Prev, entries[i].Seq = prev, seq
			body, err := canonical(entries[i])
			if err != nil {
				return internal("audit append", "encode: %v", err)
			}
			entries[i].Hash = chainHash(prev, body)
			prev = entries[i].Hash
			args = append(args, entries[i].Hash, strconv.FormatInt(seq, 10), body)
		}
		reply, err := batchScript.Run(ctx, a.rdb, []string{a.stream, a.head, a.claim}, args...).Slice()
		if err != nil {
			return unavailable("audit append", err, msgAuditWriteDown)
		}
		got, status, err := parseHeadReply(reply)
		if err != nil {
			return err
		}
		last := entries[len(entries)-1]
		switch {
		case status == appendDone, status != appendHeadless && got.hash == last.Hash:
			a.last = got
			return nil
		case status == appendStale:
			a.last, head = got, got
			lost++
		case status == appendClaimed:
			a.last, head = got, got
			if err := jitter(ctx, try+1); err != nil {
				return unavailable("audit append: back off", err, msgAuditWriteDown)
			}
		default:
			return fault.Wrap(errors.New("sessions: audit append: head record missing over existing entries"), fault.Internal,
				"the audit trail's head record is missing although it has entries, so nothing was recorded. Run `tollgate audit verify`.")
		}
	}
	return unavailable("audit append", fmt.Errorf("chain still contended after %d tries", maxAppendTries), msgAuditWriteDown)
}

func parseHeadReply(reply []any) (chainHead, int64, error) {
	if len(reply) != 4 {
		return chainHead{}, 0, internal("audit append", "script replied %v", reply)
	}
	status, ok := reply[0].(int64)
	hash, ok1 := reply[1].(string)
	seqText, ok2 := reply[2].(string)
	id, ok3 := reply[3].(string)
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || !ok1 || !ok2 || !ok3 || err != nil || status < appendStale || status > appendClaimed {
		return chainHead{}, 0, internal("audit append", "script replied %v", reply)
	}
	return chainHead{hash: hash, seq: seq, id: id}, status, nil
}

// Batcher writes audit entries in the background, many per round trip,
// so that recording a routine call costs the call no Redis round trip.
// Entries are validated when queued; they reach Redis within FlushEvery.
// What a crash loses is what was queued in that window: use Audit.Append
// for entries that must be stored before anything else happens (holds,
// commits, exchanges, gate decisions).
type Batcher struct {
	a       *Audit
	ch      chan Entry
	every   time.Duration
	max     int
	onError func(err error, lost int)
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
}

// NewBatcher starts a background writer. onError is told about entries a
// flush could not store (after one retry).
func (a *Audit) NewBatcher(flushEvery time.Duration, onError func(err error, lost int)) *Batcher {
	if flushEvery <= 0 {
		flushEvery = 5 * time.Millisecond
	}
	if onError == nil {
		onError = func(error, int) {}
	}
	b := &Batcher{a: a, ch: make(chan Entry, 4096), every: flushEvery, max: 256, onError: onError, stop: make(chan struct{})}
	b.wg.Add(1)
	go b.run()
	return b
}

// Append queues e. A malformed entry is refused now; when the queue is
// full the entry is written synchronously instead (backpressure, never a
// silent drop).
func (b *Batcher) Append(ctx context.Context, e Entry) (Entry, error) {
	e, err := prepareEntry(e, b.a.cfg.Now())
	if err != nil {
		return Entry{}, err
	}
	select {
	case <-b.stop:
		return b.a.Append(ctx, e) // closed: nothing would flush it
	default:
	}
	select {
	case b.ch <- e:
		return e, nil
	default:
		return b.a.Append(ctx, e)
	}
}

// Close flushes what is queued and stops the writer.
func (b *Batcher) Close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

func (b *Batcher) run() {
	defer b.wg.Done()
	t := time.NewTicker(b.every)
	defer t.Stop()
	var buf []Entry
	flush := func() {
		for len(buf) > 0 {
			n := min(len(buf), b.max)
			chunk := buf[:n]
			err := b.a.AppendBatch(context.Background(), chunk)
			if err != nil {
				err = b.a.AppendBatch(context.Background(), chunk)
			}
			if err != nil {
				b.onError(err, n)
			}
			buf = buf[n:]
		}
		buf = buf[:0]
	}
	for {
		select {
		case e := <-b.ch:
			buf = append(buf, e)
			if len(buf) >= b.max {
				flush()
			}
		case <-t.C:
			flush()
		case <-b.stop:
			for {
				select {
				case e := <-b.ch:
					buf = append(buf, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
