// Package approvals is the approvals web app (SPEC §8): the page at
// /approvals where a human signs in through OpenID Connect as the
// principal and approves or denies what an agent asked for, with its own
// session cookie and CSRF tokens, keyed from a secret every replica shares.
//
// It owns the page's cookies (tg_approvals, tg_approvals_login), their
// crypto, the sign-in round trip and the audit entry of a decision
// (DecisionEntry, shared with the CLI). Pages built on a signed-in human,
// such as the provider flows (web/flows), use Page's exported helpers.
//
// It never verifies task tokens, never serves /mcp, never calls a
// provider, and never decides an approval for anyone but the signed-in
// principal; an approval of another principal answers exactly as one that
// does not exist.
package approvals
