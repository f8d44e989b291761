// Package idempotency decides whether a paid or creating tool call is new,
// a replay of a finished call, a concurrent duplicate, or a key reused with
// other arguments (SPEC §7 step 6, §9.2). It also derives the idempotency
// keys that go upstream, so a retried call sends the provider the same key.
//
// It never calls a provider and never parses a token: callers hand it a
// principal, a tool name, a key and the digest of the call's arguments.
//
// # Keys
//
// A call's key is the caller's explicit idempotency_key or, without one,
// DeriveKey(principal, tool, Digest(args)): the same arguments give the same
// key for as long as the record lives (Config.TTL, at least 24h), which is
// the window within which an identical call is answered from the record.
// Strip the idempotency_key itself from the arguments before Digest.
//
// Keys are scoped: the same raw key under another principal or tool is
// another record. Outcome.Key (ScopedKey) names the scoped key; pass it to
// Store.UpstreamKey to get the provider's key, an HMAC under a per-deployment
// secret, so the raw key never leaves the process and two principals never
// share an upstream key.
//
// # Life of a record
//
//	Begin    no record (or an expired lock)  → in_progress, Started with a fence
//	Begin    in_progress, same digest        → fault code in_progress
//	Begin    any state, other digest         → fault code idempotency_conflict
//	Begin    done, same digest               → Replay with the stored result
//	Complete in_progress, fence matches      → done, kept Config.TTL
//	Abort    in_progress, fence matches      → deleted (nothing reached the provider)
//
// An in_progress record is a lock that expires after Config.InProgressTTL,
// judged by the Store's clock (and, as housekeeping, by a Redis TTL of the
// same length), so a crashed call does not block its key for ever. A lock
// taken over gets a new fence; Complete and Abort with the old fence are
// refused (FenceLost), so a slow call cannot overwrite its successor.
//
// # Redis layout
//
// With the default prefix "tg" and P the principal with '%', '{' and '}'
// percent-encoded (so it can never open or close a Redis Cluster hash tag):
//
//	tg:{P}:idem:<tool>:<sha256(key) hex>   hash  state, digest, fence,
//	                                             lock_until_ms, result, done_ms
//
// Each operation is one EVALSHA of one script on one key; time comes from
// the Store's clock in ARGV, never from Redis. Any Redis error, timeout or
// unexpected reply refuses the call (fault.Unavailable, fault.Internal):
// Begin fails closed.
package idempotency
