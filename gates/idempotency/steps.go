package idempotency

import (
	"strconv"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// The store's steps for fused scripts (internal/fuse): Begin and Complete
// with the same scripts, keys and arguments, and Peek, which only reads.

// peekLua answers what Begin would, without taking the lock: the guard
// peeks before it quotes or asks a human, so that a replay never asks
// twice, and begins only when it holds the money.
// KEYS: record. ARGV: now, digest.
// Reply: {1} free | {2, result} | {3} conflict | {4} busy | {5} odd.
const peekLua = `
local r = redis.call('HMGET', KEYS[1], 'state', 'digest', 'lock_until_ms', 'result')
if not r[1] then return {1} end
if r[1] == 'in_progress' then
  local u = tonumber(r[3])
  if not u or tonumber(ARGV[1]) >= u then return {1} end
  if r[2] ~= ARGV[2] then return {3} end
  return {4}
end
if r[1] == 'done' then
  if r[2] ~= ARGV[2] then return {3} end
  if not r[4] then return {5} end
  return {2, r[4]}
end
return {5}
`

// PeekStep looks at the record of (principal, tool, key) as Begin would,
// and takes nothing. The script goes on only when the key is free; the
// returned function reads the reply: an Outcome with State Replay and the
// stored result, State Started meaning free (no Fence: nothing is held),
// or Begin's refusals.
func (s *Store) PeekStep(principal, tool, key, digest string) (fuse.Step, func(reply any) (Outcome, error), error) {
	if err := validate(principal, tool, key); err != nil {
		return fuse.Step{}, nil, err
	}
	if !validDigest(digest) {
		return fuse.Step{}, nil, invalid("the arguments' digest is malformed, so the call was refused; nothing was charged.")
	}
	step := fuse.Step{Name: "idem_peek", Body: peekLua, Continue: "r[1] == " + strconv.Itoa(codeStarted),
		Keys: []string{s.keys.record(principal, tool, key)}, Args: []any{s.cfg.Now().UnixMilli(), digest}}
	scoped := ScopedKey(principal, tool, key)
	return step, func(reply any) (Outcome, error) {
		r, _ := reply.([]any)
		code, ok := replyCode(r)
		if !ok {
			return Outcome{}, internal("peek", msgBeginOdd, "reply %v", reply)
		}
		switch code {
		case codeStarted:
			return Outcome{State: Started, Key: scoped}, nil
		case codeReplay:
			res, ok := r[len(r)-1].(string)
			if len(r) != 2 || !ok {
				return Outcome{}, internal("peek", msgBeginOdd, "replay reply %v", reply)
			}
			return Outcome{State: Replay, Result: []byte(res), Key: scoped}, nil
		case codeConflict:
			return Outcome{}, errConflict()
		case codeBusy:
			return Outcome{}, errInProgress()
		}
		return Outcome{}, internal("peek", msgBeginOdd, "script replied %v", reply)
	}, nil
}

// BeginStep is Begin as a fused step. It draws the fence now, so the
// caller can name what it holds after it (a hold id) in the same script.
// The script goes on only when the call started.
func (s *Store) BeginStep(principal, tool, key, digest string) (fuse.Step, Outcome, func(reply any) (Outcome, error), error) {
	if err := validate(principal, tool, key); err != nil {
		return fuse.Step{}, Outcome{}, nil, err
	}
	if !validDigest(digest) {
		return fuse.Step{}, Outcome{}, nil, invalid("the arguments' digest is malformed, so the call was refused; nothing was charged.")
	}
	fence := newFence()
	started := Outcome{State: Started, Fence: fence, Key: ScopedKey(principal, tool, key)}
	step := fuse.Step{Name: "idem_begin", Body: beginLua, Continue: "r[1] == " + strconv.Itoa(codeStarted),
		Keys: []string{s.keys.record(principal, tool, key)},
		Args: []any{s.cfg.Now().UnixMilli(), digest, fence, s.cfg.InProgressTTL.Milliseconds()}}
	return step, started, func(reply any) (Outcome, error) {
		r, _ := reply.([]any)
		return s.beginReply(r, fence, started.Key)
	}, nil
}

// CompleteStep is Complete as a fused step. The script always goes on: a
// lost lock is the caller's to report, and the step it belongs to is still
// worth recording.
func (s *Store) CompleteStep(principal, tool, key, fence string, result []byte) (fuse.Step, func(reply any) error, error) {
	if err := validate(principal, tool, key); err != nil {
		return fuse.Step{}, nil, err
	}
	if !validFence(fence) {
		return fuse.Step{}, nil, errCompleteLost()
	}
	if len(result) > MaxResult {
		return fuse.Step{}, nil, invalid("the call's result has %d bytes, over the %d that can be kept for replays, so it was not recorded.", len(result), MaxResult)
	}
	step := fuse.Step{Name: "idem_complete", Body: completeLua, Continue: "true",
		Keys: []string{s.keys.record(principal, tool, key)},
		Args: []any{fence, result, s.cfg.TTL.Milliseconds(), s.cfg.Now().UnixMilli()}}
	return step, func(reply any) error {
		code, _ := reply.(int64)
		return completeCode(code)
	}, nil
}
