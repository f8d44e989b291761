package loopguard

import (
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestLoopDetection(t *testing.T) {
	tests := []struct {
		name string
		run  func(f *fixture) Call
		code fault.Code
	}{
		{"two refusals are not a loop", func(f *fixture) Call {
			f.refused(call("s1"), "cap_exceeded")
			f.refused(call("s1"), "cap_exceeded")
			return call("s1")
		}, ""},
		{"three identical refusals pause the call", func(f *fixture) Call {
			f.refused(call("s1"), "cap_exceeded")
			f.refused(call("s1"), "provider_error")
			f.refused(call("s1"), RateLimited)
			return call("s1")
		}, LoopDetected},
		{"the pause covers every session of the principal", func(f *fixture) Call {
			for _, s := range []string{"s1", "s2", "s3"} {
				f.refused(call(s), "cap_exceeded")
			}
			return call("s4")
		}, LoopDetected},
		{"other arguments are fine", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			c := call("s1")
			c.Digest = digestB
			return c
		}, ""},
		{"another tool with the same arguments is fine", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			c := call("s1")
			c.Tool = "domain_register"
			return c
		}, ""},
		{"another principal is fine", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			c := call("s1")
			c.Principal = bob
			return c
		}, ""},
		{"pause holds until the cooldown's last millisecond", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			f.clock.Advance(DefaultCooldown - time.Millisecond)
			return call("s1")
		}, LoopDetected},
		{"after the cooldown the call is allowed again", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			f.clock.Advance(DefaultCooldown)
			return call("s1")
		}, ""},
		{"after the cooldown one more refusal is not a loop yet", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			f.clock.Advance(DefaultCooldown)
			f.refused(call("s1"), "cap_exceeded")
			return call("s1")
		}, ""},
		{"refusals spread over more than the window are not a loop", func(f *fixture) Call {
			f.refused(call("s1"), "cap_exceeded")
			f.clock.Advance(30 * time.Second)
			f.refused(call("s1"), "cap_exceeded")
			f.clock.Advance(30 * time.Second)
			f.refused(call("s1"), "cap_exceeded")
			return call("s1")
		}, ""},
		{"loop_detected refusals do not extend the pause", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			for range 5 {
				f.refused(call("s1"), LoopDetected)
			}
			f.clock.Advance(DefaultCooldown)
			return call("s1")
		}, ""},
		{"the server's own faults are not the agent's loop", func(f *fixture) Call {
			for range 3 {
				f.refused(call("s1"), fault.Unavailable)
				f.refused(call("s1"), fault.Internal)
			}
			return call("s1")
		}, ""},
		{"a pause wins over a free rate", func(f *fixture) Call {
			f.allowN(call("s1"), 1)
			for range 3 {
				f.refused(call("s1"), "cap_exceeded")
			}
			return call("s2")
		}, LoopDetected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			wantCode(t, f.allow(tt.run(f)), tt.code)
		})
	}
}

// The guard's own flow: the 61st call is refused, the guard reports it, and
// an agent repeating it is soon told it loops.
func TestRateLimitedRetriesBecomeALoop(t *testing.T) {
	f := newFixture(t)
	f.allowN(call("s1"), 60)
	for range 3 {
		err := f.allow(call("s1"))
		wantCode(t, err, RateLimited)
		f.refused(call("s1"), fault.CodeOf(err))
	}
	wantCode(t, f.allow(call("s1")), LoopDetected)
}
