// Package human is the library behind tollgate's human gates (SPEC §8): the
// points where a human, not the agent, must say yes — authentication, terms
// of service, billing setup, production changes, purchases and cap raises.
//
// It owns three things:
//
//   - Sealed gate state (Sealer). With MCP 2026-07-28 clients a gate is a
//     multi-round-trip input_required result whose requestState the client
//     carries back with the human's answer. Seal turns what was asked into
//     an AES-256-GCM sealed, expiring token bound to principal, session,
//     tool and arguments digest; Open accepts it at most once, across every
//     replica. An accept that arrives without a state this server sealed
//     for exactly this call — inputResponses forged into the first call,
//     a replayed, expired or foreign state, changed arguments — is refused
//     with a stable code.
//   - Approvals. Clients that cannot elicit, and URL-mode flows, get an
//     approval id; the human decides on tollgate's approvals page or with
//     the CLI, which authenticate the human as the principal (Decide), and
//     the agent's retry uses the approval once, for exactly the call it was
//     asked for (Consume).
//   - Remembered consents (Consents): terms acceptance per terms version,
//     and billing setup, per principal and provider, so they are not asked
//     again. Nothing else is ever remembered.
//
// It also has the CSRF token helper of the approvals page.
//
// human never parses a token, never calls a provider and never renders MCP
// messages or HTML: callers hand it the principal and session they took
// from a verified token, the tool name and idempotency.Digest of the
// arguments, and the summary they show the human. Deciding which gates a
// tool needs, building elicitations, releasing holds and auditing outcomes
// are the caller's.
//
// # Guarantees
//
//   - A state or approval answers for one Binding only. Open and Consume
//     compare all four fields; Decide takes the authenticated principal and
//     refuses anyone else (approval_forbidden).
//   - Single use: Open marks the state id used with SET NX and Consume
//     marks the approval used inside its Lua script, so two replicas racing
//     with the same answer cannot both proceed.
//   - Expiry is judged by the Go clock (the configs' Now), passed to Redis
//     in ARGV; Redis TTLs only clean up. A late accept is refused.
//   - Fail closed: a Redis error, a timeout, a cancelled context or a reply
//     the package does not understand is an error (fault.Unavailable or
//     fault.Internal), never a yes. Has reports false with its error.
//   - Untrusted input is bounded before it is decoded (MaxStateLen) and
//     every refusal carries a code (errors.go); refusals never describe a
//     state or approval the caller does not own.
//
// # The sealing key
//
// One random 256-bit master key, created with SET NX by the first replica
// to start and read by the others, lives in Redis at <prefix>:gates:sealkey.
// Anyone who can read Redis can read it: it protects gate state against
// agents and clients, not against Redis administrators. Open reads the key
// in the same round trip as it marks the state used; when Redis no longer
// holds the key the Sealer has (a flush, a failover to an empty Redis, a
// deliberate rotation by deleting it), the used marks may be gone too, so
// the state is refused (state_invalid), the Sealer adopts or creates the
// current key, and every state sealed before is refused from then on.
//
// # Redis layout
//
// With the default prefix "tg" and P the principal with '%', '{' and '}'
// percent-encoded (the same escaping as packages sessions and spend, so a
// principal can never open or close a Redis Cluster hash tag):
//
//	tg:gates:sealkey                 string  the master key, standard base64; no TTL
//	tg:{P}:gate:used:<state id>      string  a used sealed state (value: unix ms); TTL = its remaining life + 1m
//	tg:{P}:approval:<id>             hash    the approval record (see Approval); TTL = TTL + Retention
//	tg:{P}:approvals                 zset    the principal's approvals, score = purge deadline (unix ms)
//	tg:approval:<id>                 string  the approval's principal, for the page's lookup by id and the
//	                                         operator's listing across principals (Approvals.IDs); same TTL
//	tg:{P}:consents                  hash    "<provider>|<kind>|<version>" → first acceptance (unix ms); no TTL
//
// Every Lua script touches keys of one principal only (one hash tag, one
// Cluster slot). The seal key and the approval owner index have no tag and
// are read or written by plain commands pipelined with the script, so Open,
// Create, Decide and Consume each cost one round trip (plus one EVAL the
// first time a Redis node sees a script); Get costs two.
package human
