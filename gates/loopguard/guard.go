package loopguard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Call identifies one tool call for the guard.
type Call struct {
	Principal string
	// Session is the task session id.
	Session string
	Tool    string
	// Digest identifies the arguments (idempotency.Digest); identical calls
	// have identical digests.
	Digest string
}

func (c Call) validate() error {
	switch {
	case !validPrincipal(c.Principal):
		return invalid("the principal is malformed, so the call was refused; nothing was charged.")
	case !validToken(c.Session, false):
		return invalid("the session id is malformed, so the call was refused; nothing was charged.")
	case !validToken(c.Tool, true):
		return invalid("the tool name is malformed, so the call was refused; nothing was charged.")
	case !validToken(c.Digest, false):
		return invalid("the arguments' digest is malformed, so the call was refused; nothing was charged.")
	}
	return nil
}

// Allow decides whether call may proceed (SPEC §7 step 5) and, if so,
// counts it. It costs exactly one Redis round trip, an EVALSHA (plus one
// EVAL the first time a Redis node sees the script).
//
// It returns nil only on a positive answer. Otherwise: LoopDetected while
// the call's cooldown runs, RateLimited when the session or the principal
// reached its limit within the window, fault.InvalidArgument for a
// malformed call, and fault.Unavailable or fault.Internal when Redis errs,
// times out or answers anything unexpected. Refused calls are not counted.
func (g *Guard) Allow(ctx context.Context, call Call) error {
	if err := call.validate(); err != nil {
		return err
	}
	now := g.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	// Run, not RunRO: counting writes, and a replica may lag.
	reply, err := g.scripts.allow.Run(ctx, g.rdb,
		[]string{g.keys.cooldown(call), g.keys.session(call.Principal, call.Session), g.keys.principal(call.Principal)},
		now.UnixMilli(), g.cfg.Window.Milliseconds(), g.cfg.PerSession, g.cfg.PerPrincipal, member(now)).Int64Slice()
	if err != nil {
		// Fail closed: an error, a timeout or a nil reply is never "allowed".
		return unavailable("allow", err, msgAllowDown)
	}
	if len(reply) != 2 {
		return internal("allow", msgAllowOdd, "reply %v", reply)
	}
	return g.allowCode(call, reply[0], time.UnixMilli(reply[1]), now)
}

// allowCode maps the allow script's reply to Allow's answer.
func (g *Guard) allowCode(call Call, code int64, at, now time.Time) error {
	switch code {
	case codeOK:
		return nil
	case codeLoop:
		return errLoop(call.Tool, g.cfg.RepeatLimit, g.cfg.RepeatWindow, at, now)
	case codeSessionLimit:
		return errRate("this task session", g.cfg.PerSession, g.cfg.Window, at, now)
	case codePrincipal:
		return errRate("all task sessions of this principal together", g.cfg.PerPrincipal, g.cfg.Window, at, now)
	default:
		return internal("allow", msgAllowOdd, "script replied %d", code)
	}
}

// Refused records that call was refused with code, by any step of the
// guard or by the provider. The RepeatLimit-th refusal of the same
// (principal, tool, digest) within RepeatWindow starts its Cooldown, during
// which Allow answers LoopDetected. Refusals with LoopDetected itself (a
// paused call keeps its announced end) and the server's own faults
// (fault.Unavailable, fault.Internal) are not counted; they return nil.
//
// Errors: fault.InvalidArgument for a malformed call or an empty code,
// fault.Unavailable or fault.Internal when Redis fails; the refusal was then
// not counted.
func (g *Guard) Refused(ctx context.Context, call Call, code fault.Code) error {
	if err := call.validate(); err != nil {
		return err
	}
	switch code {
	case "":
		return invalid("a refusal needs its code.")
	case LoopDetected, fault.Unavailable, fault.Internal:
		return nil
	}
	now := g.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	reply, err := g.scripts.refused.Run(ctx, g.rdb,
		[]string{g.keys.refused(call), g.keys.cooldown(call)},
		now.UnixMilli(), g.cfg.RepeatWindow.Milliseconds(), g.cfg.RepeatLimit, g.cfg.Cooldown.Milliseconds(), member(now)).Int64Slice()
	if err != nil {
		return unavailable("refused", err, msgRefusedDown)
	}
	if len(reply) != 2 || reply[0] != codeOK && reply[0] != codeCooldown {
		return internal("refused", msgRefusedOdd, "script replied %v", reply)
	}
	return nil
}

// member names one logged call: its time and 64 random bits, unique even
// for calls in the same millisecond on different replicas.
func member(now time.Time) string {
	var b [8]byte
	// crypto/rand.Read never returns an error (Go 1.24+).
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])
}
