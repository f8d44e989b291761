// Package sessions owns tollgate's task sessions in Redis: creating them,
// looking them up by principal and session id, the delegation tree between a
// session and its sub-agents' sessions, the revocation cascade down that
// tree, and the deny-list of revoked token ids (jti). It will also own the
// audit trail of what happened in a session.
//
// It never decides policy (who may act for whom, which scopes or budgets a
// session gets: that is auth's job) and it never parses tokens: callers hand
// it a principal, a session id, a jti and the SHA-256 of a token.
//
// A session id alone proves nothing. Every key includes the principal, and a
// lookup under the wrong principal answers exactly as a lookup of an id that
// does not exist (fault.NotFound), so ids cannot be probed across principals.
//
// # Redis layout
//
// With the default prefix "tg" and P the principal with '%', '{' and '}'
// percent-encoded (so it can never open or close a Redis Cluster hash tag):
//
//	tg:{P}:sess:<sid>   hash    the session record
//	tg:{P}:toks:<sid>   set     SHA-256 (hex) of every token issued for it
//	tg:{P}:kids:<sid>   set     child sessions, each "<principal>|<sid>" (raw principal)
//	tg:{P}:jti:<jti>    string  deny-listed token id (value: its sid), TTL to the token's exp
//	tg:{P}:idx          zset    the principal's sessions, score = purge deadline (unix ms)
//	tg:sid:<sid>        string  principal of sid, for operators who only have the id
//	tg:sessidx          zset    every session id, score = purge deadline (unix ms)
//
// Everything one Lua script touches lives under one principal's hash tag, so
// the package works unchanged on Redis Cluster (use redis.UniversalClient);
// the two id indexes have no tag and are only written by plain commands.
// A child under another principal than its parent is linked from Go: it is
// written "pending" (never passes Check, invisible to reads), linked by a
// script on the parent's slot that checks the parent is active, then
// activated unless a revocation reached it first.
// Records outlive their session's expiry by a retention window (default 24h)
// so that expired sessions can still be shown; the purge deadline is
// Expires + retention.
//
// # The per-call check
//
// Store.Check is the guard's step 2 (SPEC §7): exactly one round trip, one
// EVALSHA that reads the session and the jti deny-list key. Nothing is
// cached, so a revocation takes effect on the very next call on every
// replica. Any Redis error, timeout or unexpected reply refuses the call
// (fault.Unavailable): the check fails closed.
package sessions
