// Package loopguard stops agents from hammering metered tools (SPEC §7
// step 5, §9.3): it rate-limits calls per task session and per principal,
// and pauses a call that keeps being refused with the very same arguments —
// the metered-API loop the agent cannot see.
//
// It never calls a provider and never parses a token: callers hand it a
// principal, a session id, a tool name and the digest of the arguments
// (idempotency.Digest).
//
// # Rate limits
//
// Guard.Allow counts calls in a sliding window (Config.Window, one minute):
// every allowed call is logged with its time in a sorted set per session and
// one per principal, entries older than the window are dropped, and a call
// is refused with rate_limited when its session already made PerSession
// calls (60) or its principal PerPrincipal calls (120) within the window.
// The window is exact, not an estimate from fixed buckets; a set holds at
// most its limit of entries because refused calls are not logged. The refusal
// names the limit and the time the oldest counted call leaves the window.
//
// # Loops
//
// The caller reports every refused call with Guard.Refused (any code but
// loop_detected and the server's own faults, unavailable and internal).
// When the same (principal, tool, digest) is refused RepeatLimit times (3)
// within RepeatWindow (1m), that call is paused for Cooldown (1m): Allow
// refuses it with loop_detected until then, whatever the rate. Another tool
// or other arguments are not affected.
//
// # Redis layout
//
// With the default prefix "tg" and P the principal with '%', '{' and '}'
// percent-encoded (so it can never open or close a Redis Cluster hash tag):
//
//	tg:{P}:loop:sess:<sid>              zset    allowed calls of a session, score = unix ms
//	tg:{P}:loop:all                     zset    allowed calls of the principal, score = unix ms
//	tg:{P}:loop:ref:<tool>:<digest>     zset    refused identical calls, score = unix ms
//	tg:{P}:loop:cool:<tool>:<digest>    string  end of a cooldown (unix ms)
//
// Allow is one EVALSHA of one script on keys of one principal (one Cluster
// slot): one Redis round trip. Time comes from the Guard's clock in ARGV,
// never from Redis; Redis TTLs only clean up. Any Redis error, timeout or
// unexpected reply refuses the call with fault.Unavailable or fault.Internal:
// the guard fails closed.
package loopguard
