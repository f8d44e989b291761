// Package spend is tollgate's money ledger: the monthly cap per principal
// and provider, the task budgets along a session chain, and the holds,
// commits and releases against both (SPEC §9.1, §9.2).
//
// Before a paid provider call the caller holds the quoted amount
// (Ledger.Hold); after it, it commits the actual amount, which may be less
// (Ledger.Commit), or releases the hold (Ledger.Release). A hold that is
// neither committed nor released within its TTL (a crashed process) expires:
// its amount is freed, and it stays listed (Ledger.Holds with Stale) until
// an operator reconciles it with Ledger.Release (nothing was charged) or
// Ledger.Reconcile (the provider did charge).
//
// spend never calls a provider and never parses a token: callers hand it a
// principal, a provider name, an amount and the task budgets they read from
// the token. It decides only whether the money is there.
//
// # Guarantees
//
//   - For every principal, provider and UTC calendar month, spent + held
//     never exceeds the cap, under any concurrency and across replicas
//     sharing one Redis: the check and the increment are one Lua script.
//     (Reconcile records money a provider really took and may push spent
//     past the cap; it never creates a hold.)
//   - For every task budget named in a hold, spent + held never exceeds its
//     maximum. A child session's hold names the child's and every
//     ancestor's budget, so it counts against all of them and a child can
//     never spend more than its parent has left.
//   - A hold belongs to the month of the ledger's clock when it was made,
//     and its commit or release settles that month even after midnight.
//   - Every script is idempotent per hold id: go-redis retries a command
//     after a network error, and a retried hold, commit or release never
//     counts twice.
//   - Fail closed: a Redis error, a timeout, a cancelled context or a reply
//     the package does not understand is an error (fault.Unavailable or
//     fault.Internal), never a hold. The caller must not call the provider.
//
// Amounts are integer minor units (money.Money) with a currency; the cap's
// currency decides, and an amount in another currency is refused. Amounts
// are bounded by MaxMinor so that Lua's doubles stay exact.
//
// # Redis layout
//
// With the default prefix "tg" and P the principal with '%', '{' and '}'
// percent-encoded (the same escaping as package sessions, so a principal can
// never open or close a Redis Cluster hash tag):
//
//	tg:{P}:cap:<provider>:<YYYY-MM>      hash  spent, held (minor units), currency
//	tg:{P}:budget:<sid>:<provider>       hash  spent, held (minor units), currency
//	tg:{P}:hold:<id>                     hash  the hold record (see Hold)
//	tg:{P}:holds:open                    zset  open holds, score = expiry (unix ms)
//	tg:{P}:holds:stale                   zset  expired, unreconciled holds, score = expiry
//	tg:spend:principals                  zset  principals that asked for a hold, score = last ask (unix ms)
//
// Every script touches keys of one principal only (one hash tag, one
// Cluster slot); the scripts build the keys of other holds, months and
// budgets from the "tg:{P}:" base they are given, which stays on that slot.
// The principals index has no tag and is written by a plain ZADD pipelined
// with the hold script. Time always comes from the ledger's clock, passed
// in ARGV; scripts never read Redis's clock.
//
// Counters and settled hold records are kept for Config.Retention after
// their last write (default 400 days, so a year of months can be shown).
// Open and expired-unreconciled hold records never expire.
package spend
