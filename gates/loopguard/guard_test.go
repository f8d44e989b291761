package loopguard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name string
		// run makes calls and returns the one to check.
		run  func(f *fixture) Call
		code fault.Code
	}{
		{"60th call of a session in a minute passes", func(f *fixture) Call {
			f.allowN(call("s1"), 59)
			return call("s1")
		}, ""},
		{"61st call of a session in a minute is refused", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			return call("s1")
		}, RateLimited},
		{"other arguments count towards the same session", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			c := call("s1")
			c.Tool, c.Digest = "dns_list", digestB
			return c
		}, RateLimited},
		{"another session of the principal is still fine", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			_ = f.allow(call("s1"))
			f.allowN(call("s2"), 59)
			return call("s2")
		}, ""},
		{"121st call of a principal in a minute is refused", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			f.allowN(call("s2"), 60)
			return call("s3")
		}, RateLimited},
		{"another principal is not affected", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			f.allowN(call("s2"), 60)
			c := call("s1")
			c.Principal = bob
			return c
		}, ""},
		{"a minute later the session may call again", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			f.clock.Advance(time.Minute)
			return call("s1")
		}, ""},
		{"a minute later the principal may call again", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			f.allowN(call("s2"), 60)
			f.clock.Advance(time.Minute)
			return call("s3")
		}, ""},
		{"the window slides: calls leave it one by one", func(f *fixture) Call {
			f.allowN(call("s1"), 30)
			f.clock.Advance(30 * time.Second)
			f.allowN(call("s1"), 30)
			f.clock.Advance(30*time.Second - time.Millisecond)
			wantCode(f.t, f.allow(call("s1")), RateLimited)
			f.clock.Advance(time.Millisecond) // the first 30 leave
			f.allowN(call("s1"), 29)
			return call("s1")
		}, ""},
		{"the window slides: only the calls that left free a place", func(f *fixture) Call {
			f.allowN(call("s1"), 30)
			f.clock.Advance(30 * time.Second)
			f.allowN(call("s1"), 30)
			f.clock.Advance(30 * time.Second)
			f.allowN(call("s1"), 30)
			return call("s1")
		}, RateLimited},
		{"refused calls are not counted", func(f *fixture) Call {
			f.allowN(call("s1"), 60)
			for range 100 {
				wantCode(f.t, f.allow(call("s1")), RateLimited)
			}
			f.clock.Advance(time.Minute)
			f.allowN(call("s1"), 59)
			return call("s1")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			wantCode(t, f.allow(tt.run(f)), tt.code)
		})
	}
}

func TestConcurrentCallsNeverExceedTheLimit(t *testing.T) {
	f := newFixture(t)
	const n = 200
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		allowed int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Three sessions of one principal race for its 120 calls.
			err := f.allow(call([]string{"s1", "s2", "s3"}[i%3]))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				allowed++
			case fault.CodeOf(err) != RateLimited:
				t.Errorf("allow: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if allowed != DefaultPerPrincipal {
		t.Fatalf("%d calls allowed, want exactly %d", allowed, DefaultPerPrincipal)
	}
}

func TestConfiguredLimits(t *testing.T) {
	rdb := newFixture(t).rdb
	f := newFixtureOn(t, rdb, Config{Prefix: "other", PerSession: 2, PerPrincipal: 3, Window: time.Second,
		RepeatLimit: 1, RepeatWindow: time.Second, Cooldown: 10 * time.Second})
	f.allowN(call("s1"), 2)
	wantCode(t, f.allow(call("s1")), RateLimited)
	f.allowN(call("s2"), 1)
	wantCode(t, f.allow(call("s3")), RateLimited)
	f.clock.Advance(time.Second)
	f.allowN(call("s1"), 2)

	f.refused(call("s9"), "cap_exceeded")
	wantCode(t, f.allow(call("s9")), LoopDetected)
	f.clock.Advance(10 * time.Second)
	wantCode(t, f.allow(call("s9")), "")
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"negative session limit", Config{PerSession: -1}, false},
		{"negative principal limit", Config{PerPrincipal: -1}, false},
		{"negative repeat limit", Config{RepeatLimit: -1}, false},
		{"negative window", Config{Window: -time.Second}, false},
		{"sub-millisecond cooldown", Config{Cooldown: time.Microsecond}, false},
		{"negative timeout", Config{Timeout: -1}, false},
		{"prefix closing a hash tag", Config{Prefix: "tg}"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(redis.NewClient(&redis.Options{}), tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New accepted a nil client")
	}
}

func TestMalformedCallsAreRefused(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]Call{
		"no principal":              {Session: "s1", Tool: "t", Digest: digestA},
		"principal with a newline":  {Principal: "a\nb", Session: "s1", Tool: "t", Digest: digestA},
		"no session":                {Principal: alice, Tool: "t", Digest: digestA},
		"session with a colon":      {Principal: alice, Session: "s1:all", Tool: "t", Digest: digestA},
		"session with a brace":      {Principal: alice, Session: "{s1}", Tool: "t", Digest: digestA},
		"no tool":                   {Principal: alice, Session: "s1", Digest: digestA},
		"tool reaching another key": {Principal: alice, Session: "s1", Tool: "t:cool", Digest: digestA},
		"no digest":                 {Principal: alice, Session: "s1", Tool: "t"},
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, f.allow(c), fault.InvalidArgument)
			wantCode(t, f.guard.Refused(context.Background(), c, "cap_exceeded"), fault.InvalidArgument)
		})
	}
	wantCode(t, f.guard.Refused(context.Background(), call("s1"), ""), fault.InvalidArgument)
}

// The digest the guard passes is idempotency.Digest's.
func TestAcceptsIdempotencyDigests(t *testing.T) {
	f := newFixture(t)
	d, err := idempotency.Digest(map[string]any{"domain": "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := call("s1")
	c.Digest = d
	wantCode(t, f.allow(c), "")
}

func TestAllowIsOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	// A connection in the pool first, so its handshake is not counted.
	if err := f.rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	f.rdb.AddHook(hook)
	wantCode(t, f.allow(call("warm-up")), "")
	if n := hook.N.Load(); n > 2 {
		t.Fatalf("cold allow took %d round trips, want at most 2 (EVALSHA, EVAL)", n)
	}

	hook.N.Store(0)
	f.allowN(call("s1"), 60)
	if n := hook.N.Load(); n != 60 {
		t.Fatalf("60 allows took %d round trips, want exactly one each", n)
	}
	// Refusals cost the same single round trip.
	hook.N.Store(0)
	wantCode(t, f.allow(call("s1")), RateLimited)
	for range 3 {
		f.refused(call("s2"), "cap_exceeded")
	}
	wantCode(t, f.allow(call("s2")), LoopDetected)
	if n := hook.N.Load(); n != 1+3+1 {
		t.Fatalf("two refused allows and three reports took %d round trips, want 5", n)
	}
}

func TestWait(t *testing.T) {
	now := time.Unix(100, 0)
	for _, tt := range []struct {
		until time.Time
		want  time.Duration
	}{
		{now.Add(59*time.Second + time.Millisecond), time.Minute},
		{now.Add(time.Minute), time.Minute},
		{now.Add(time.Millisecond), time.Second},
		{now, time.Second},
	} {
		if got := wait(tt.until, now); got != tt.want {
			t.Fatalf("wait(%v) = %v, want %v", tt.until.Sub(now), got, tt.want)
		}
	}
}

func TestStampNeverEarly(t *testing.T) {
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[time.Time]string{
		base:                             "2030-01-02T03:04:05Z",
		base.Add(time.Millisecond):       "2030-01-02T03:04:06Z",
		base.Add(999 * time.Millisecond): "2030-01-02T03:04:06Z",
	} {
		if got := stamp(in); got != want {
			t.Fatalf("stamp(%v) = %s, want %s", in, got, want)
		}
	}
}
