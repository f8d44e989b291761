package loopguard

import (
	"fmt"
	"math"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Decision codes of this package. They are a contract with clients.
const (
	// LoopDetected: the same call was refused too often and is paused.
	LoopDetected fault.Code = "loop_detected"
	// RateLimited: the session or the principal made too many calls.
	RateLimited fault.Code = "rate_limited"
)

// Reply codes of the Lua scripts. Zero is never "ok", so a nil or defaulted
// reply cannot pass.
const (
	codeOK           = 1
	codeLoop         = 2
	codeSessionLimit = 3
	codePrincipal    = 4
	codeCooldown     = 5
)

func errLoop(tool string, limit int, window time.Duration, until, now time.Time) error {
	return fault.Newf(LoopDetected,
		"this exact call (tool %s with the same arguments) was refused %d times within %s, so it is paused until %s (in %s); nothing was charged. Change the arguments or fix what made it fail instead of repeating it.",
		tool, limit, window, stamp(until), wait(until, now))
}

func errRate(who string, limit int, window time.Duration, retry, now time.Time) error {
	return fault.Newf(RateLimited,
		"rate limit reached: %s may make %d calls per %s; retry after %s (in %s). Nothing was charged.",
		who, limit, window, stamp(retry), wait(retry, now))
}

// stamp writes t in RFC 3339, rounded up to the second so that a retry at
// the stated time is never early.
func stamp(t time.Time) string {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return t.UTC().Format(time.RFC3339)
}

// wait is until-now rounded up to the second, at least 1s.
func wait(until, now time.Time) time.Duration {
	d := until.Sub(now)
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

func invalid(format string, args ...any) error {
	return fault.Newf(fault.InvalidArgument, format, args...)
}

// unavailable wraps a Redis failure.
func unavailable(op string, err error, public string) error {
	return fault.Wrap(fmt.Errorf("loopguard: %s: %w", op, err), fault.Unavailable, public)
}

// internal reports a reply the package does not understand; it refuses.
func internal(op, public string, format string, args ...any) error {
	return fault.Wrap(fmt.Errorf("loopguard: %s: "+format, append([]any{op}, args...)...), fault.Internal, public)
}

// Public messages for failures of the store.
const (
	msgAllowDown   = "the rate-limit store could not be reached, so the call was refused; nothing was charged. Retry shortly."
	msgAllowOdd    = "the rate-limit store returned an unexpected answer, so the call was refused; nothing was charged. Contact the operator."
	msgRefusedDown = "the rate-limit store could not be reached, so the refusal was not counted towards loop detection."
	msgRefusedOdd  = "the rate-limit store returned an unexpected answer, so the refusal was not counted towards loop detection."
)
