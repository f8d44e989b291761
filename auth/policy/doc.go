// Package policy decides, in Cedar, who may act for whom during a token
// exchange (SPEC §4.1): which agent may act on behalf of which human or
// upstream agent, who may impersonate whom, the widest scopes an agent may
// hold and the largest task budget it may carry.
//
// It owns the Cedar model below, the embedded sandbox policy and the
// translation of attested identities into Cedar entities. It never verifies
// a token, attests a workload, reads Redis or writes the audit trail: callers
// hand it identities that are already verified, and record the Decision it
// returns.
//
// # Model
//
// Entity types, all in the Tollgate namespace:
//
//	Tollgate::User      a human; id "user:<sub>". Attributes: id; email and
//	                    domain (lower case) when a verified email is known.
//	Tollgate::Agent     an attested workload; id = the attested agent id.
//	                    Attributes: id, kind ("jwt" | "unix" | "dev");
//	                    trust_domain and path for SPIFFE ids; uid (Long), exe
//	                    and sha256 for unix ids; plus Agent.Attrs under
//	                    any other name (the names above are reserved).
//	Tollgate::Scope     a scope, e.g. Tollgate::Scope::"dns:write".
//	Tollgate::Provider  Tollgate::Provider::"cloudflare" or "stripe".
//
// Actions (the principal is always the Agent asking):
//
//	Tollgate::Action::"act_for"      resource: the User or upstream Agent (delegation)
//	Tollgate::Action::"impersonate"  resource: the Agent to act as
//	Tollgate::Action::"use_scope"    resource: a Scope; context {on_behalf_of}
//	Tollgate::Action::"spend"        resource: a Provider; context {on_behalf_of,
//	                                 amount_minor: Long, currency: String (lower case)}
//
// context.on_behalf_of is the subject's entity (User or Agent) and its
// attributes are available to the policy.
//
// # Semantics
//
// Default deny, and a matching forbid beats any permit (Cedar's rules). On
// top of Cedar, tollgate fails closed: if any policy fails to evaluate (a
// missing attribute, an overflow), the request is denied — plain Cedar would
// skip that policy, so an erroring forbid would let a permit through. Read
// optional attributes behind `has`.
//
// Parse names each policy by its @id annotation (else Cedar's positional
// "policy<n>"), and refuses syntax errors, duplicate ids, references to
// entity types or actions outside the model (which could never match), and
// any permit that could allow impersonate without pinning the pair in its
// scope (principal == Agent and resource == Agent): SPEC §4 allows
// impersonation only where the policy names the pair.
// Identities that do not parse as their kind claims (a malformed SPIFFE or
// unix id, a kind that does not match the id) are denied, not half-parsed.
//
// The embedded sandbox policy (sandbox.cedar) is the commented example of
// the model.
package policy
