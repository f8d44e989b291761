package idempotency

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Decision codes of this package. They are a contract with clients.
const (
	// Conflict: the key was used before with other arguments.
	Conflict fault.Code = "idempotency_conflict"
	// InProgress: an identical call with the key is running now.
	InProgress fault.Code = "in_progress"
	// FenceLost: Complete or Abort came from a call whose lock expired and
	// was taken over (or vanished); its result was not recorded.
	FenceLost fault.Code = "idempotency_fence_lost"
)

// Reply codes of the Lua scripts. Zero is never "ok", so a nil or defaulted
// reply cannot pass.
const (
	codeStarted  = 1
	codeReplay   = 2
	codeConflict = 3
	codeBusy     = 4
	codeLost     = 5
	codeDone     = 6
	codeOK       = 7
)

func errConflict() error {
	return fault.New(Conflict,
		"this idempotency key was already used with other arguments for this tool; nothing was charged. Use a new key for a different call, or repeat the original arguments to get the original result.")
}

func errInProgress() error {
	return fault.New(InProgress,
		"an identical call with this idempotency key is still running; nothing was charged by this one. Retry later to get its result.")
}

func errCompleteLost() error {
	return fault.New(FenceLost,
		"the call's idempotency lock expired or was taken over before its result was stored, so the result was not recorded; a retry with the same key may run the call again.")
}

func errAbortLost() error {
	return fault.New(FenceLost,
		"the call's idempotency lock expired or was taken over, so it was not released; nothing was changed.")
}

func invalid(format string, args ...any) error {
	return fault.Newf(fault.InvalidArgument, format, args...)
}

// unavailable wraps a Redis failure. public says what the caller should
// know about the state left behind.
func unavailable(op string, err error, public string) error {
	return fault.Wrap(fmt.Errorf("idempotency: %s: %w", op, err), fault.Unavailable, public)
}

// Public messages for a failed Redis operation, by what it leaves behind.
const (
	msgBeginDown    = "the idempotency store could not be reached, so the call was refused; nothing was charged. Retry shortly."
	msgCompleteDown = "the idempotency store could not be reached, so the call's result was not recorded for replays; a retry with the same key is refused as in progress until the call's lock expires, then runs again."
	msgAbortDown    = "the idempotency store could not be reached, so the call's lock was not released; it expires on its own. Nothing was charged."
)

// internal reports a reply the package does not understand; it refuses.
func internal(op, public string, format string, args ...any) error {
	return fault.Wrap(fmt.Errorf("idempotency: %s: "+format, append([]any{op}, args...)...), fault.Internal, public)
}

// Public messages for a reply the package does not understand.
const (
	msgBeginOdd    = "the idempotency store returned an unexpected answer, so the call was refused; nothing was charged. Contact the operator."
	msgCompleteOdd = "the idempotency store returned an unexpected answer, so the call's result was not recorded for replays. Contact the operator."
	msgAbortOdd    = "the idempotency store returned an unexpected answer, so the call's lock was not released; it expires on its own. Contact the operator."
)
