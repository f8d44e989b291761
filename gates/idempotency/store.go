package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
)

// State is what Begin decided.
type State uint8

const (
	// Started: the call is new (or its predecessor's lock expired). Make
	// it, then Complete or Abort with Outcome.Fence.
	Started State = iota + 1
	// Replay: the call already finished; answer with Outcome.Result and
	// make no provider call.
	Replay
)

func (s State) String() string {
	switch s {
	case Started:
		return "started"
	case Replay:
		return "replay"
	default:
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
}

// Outcome is Begin's answer.
type Outcome struct {
	State State
	// Fence identifies this run of the call (Started only). Complete and
	// Abort need it; a lock taken over after expiry has another.
	Fence string
	// Result is the stored result of the finished call (Replay only).
	Result []byte
	// Key is the scoped key (ScopedKey); pass it to Store.UpstreamKey.
	Key string
}

// Begin decides whether a call with key and argument digest may run
// (SPEC §7 step 6). One Redis round trip: an EVALSHA (plus one EVAL the
// first time a Redis node sees the script).
//
// It returns Started with a fence when the key is new (or the lock of an
// earlier run expired), Replay with the stored result when the same call
// already finished. Errors: Conflict when the key was used with another
// digest, InProgress when an identical call holds the key,
// fault.InvalidArgument for a malformed input, and fault.Unavailable or
// fault.Internal when Redis errs, times out or answers anything unexpected;
// in every error case nothing may be called.
func (s *Store) Begin(ctx context.Context, principal, tool, key, digest string) (Outcome, error) {
	if err := validate(principal, tool, key); err != nil {
		return Outcome{}, err
	}
	if !validDigest(digest) {
		return Outcome{}, invalid("the arguments' digest is malformed, so the call was refused; nothing was charged.")
	}
	fence := newFence()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// Run, not RunRO: the decision must be made on the primary.
	reply, err := s.scripts.begin.Run(ctx, s.rdb, []string{s.keys.record(principal, tool, key)},
		s.cfg.Now().UnixMilli(), digest, fence, s.cfg.InProgressTTL.Milliseconds()).Slice()
	if err != nil {
		// Fail closed: an error, a timeout or a nil reply is never Started.
		return Outcome{}, unavailable("begin", err, msgBeginDown)
	}
	return s.beginReply(reply, fence, ScopedKey(principal, tool, key))
}

// beginReply reads the begin script's reply.
func (s *Store) beginReply(reply []any, fence, scoped string) (Outcome, error) {
	code, ok := replyCode(reply)
	if !ok {
		return Outcome{}, internal("begin", msgBeginOdd, "reply %v", reply)
	}
	switch code {
	case codeStarted:
		if len(reply) != 2 || reply[1] != fence {
			return Outcome{}, internal("begin", msgBeginOdd, "started reply %v", reply)
		}
		return Outcome{State: Started, Fence: fence, Key: scoped}, nil
	case codeReplay:
		res, ok := reply[len(reply)-1].(string)
		if len(reply) != 2 || !ok {
			return Outcome{}, internal("begin", msgBeginOdd, "replay reply %v", reply)
		}
		return Outcome{State: Replay, Result: []byte(res), Key: scoped}, nil
	case codeConflict:
		return Outcome{}, errConflict()
	case codeBusy:
		return Outcome{}, errInProgress()
	default:
		return Outcome{}, internal("begin", msgBeginOdd, "script replied %v", reply)
	}
}

// Complete stores result for the call that Begin started with fence, and
// keeps it for Config.TTL: later Begins with the same key and digest replay
// it. It is refused with FenceLost when the lock expired and another run
// took the key (or the record is gone), and with fault.InvalidArgument for
// a result over MaxResult. Completing twice with the same fence is a no-op.
func (s *Store) Complete(ctx context.Context, principal, tool, key, fence string, result []byte) error {
	if err := validate(principal, tool, key); err != nil {
		return err
	}
	if !validFence(fence) {
		return errCompleteLost()
	}
	if len(result) > MaxResult {
		return invalid("the call's result has %d bytes, over the %d that can be kept for replays, so it was not recorded.", len(result), MaxResult)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	now := s.cfg.Now().UnixMilli()
	code, err := s.scripts.complete.Run(ctx, s.rdb, []string{s.keys.record(principal, tool, key)},
		fence, result, s.cfg.TTL.Milliseconds(), now).Int64()
	if err != nil {
		return unavailable("complete", err, msgCompleteDown)
	}
	return completeCode(code)
}

// completeCode maps the complete script's reply to Complete's answer.
func completeCode(code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeLost:
		return errCompleteLost()
	default:
		return internal("complete", msgCompleteOdd, "script replied %d", code)
	}
}

// Abort deletes the in-progress record of the call Begin started with
// fence, so that a retry runs at once. Use it only when nothing reached the
// provider; otherwise Complete (a failure result may be worth replaying) or
// let the lock expire. No record is not an error; a record taken over by
// another run is refused with FenceLost and left alone.
func (s *Store) Abort(ctx context.Context, principal, tool, key, fence string) error {
	if err := validate(principal, tool, key); err != nil {
		return err
	}
	if !validFence(fence) {
		return errAbortLost()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	code, err := s.scripts.abort.Run(ctx, s.rdb, []string{s.keys.record(principal, tool, key)}, fence).Int64()
	if err != nil {
		return unavailable("abort", err, msgAbortDown)
	}
	switch code {
	case codeOK:
		return nil
	case codeLost:
		return errAbortLost()
	case codeDone:
		return internal("abort", msgAbortOdd, "record already completed")
	default:
		return internal("abort", msgAbortOdd, "script replied %d", code)
	}
}

func validate(principal, tool, key string) error {
	switch {
	case !validPrincipal(principal):
		return invalid("the principal is malformed, so the call was refused; nothing was charged.")
	case !validTool(tool):
		return invalid("the tool name is malformed, so the call was refused; nothing was charged.")
	case !validKey(key):
		return invalid("the idempotency_key must be 1-255 printable characters; the call was refused and nothing was charged. Send another key.")
	}
	return nil
}

// replyCode reads the leading integer of a script's array reply.
func replyCode(reply []any) (int64, bool) {
	if len(reply) == 0 {
		return 0, false
	}
	c, ok := reply[0].(int64)
	return c, ok
}

// newFence returns 128 bits from crypto/rand as 32 lowercase hex characters.
func newFence() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
