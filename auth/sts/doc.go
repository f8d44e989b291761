// Package sts is tollgate's security token service: the RFC 8693 token
// exchange at /oauth/token, and the OAuth endpoints around it (RFC 8414
// metadata, JWKS, RFC 7662 introspection, RFC 7009 revocation).
//
// An exchange verifies the subject token (a user token of a configured IdP,
// an upstream agent's task token, or an agent's own attestation), attests the
// actor, asks the policy whether the actor may act for the subject, narrows
// scope and authorization_details (never widens them), opens a task session
// in Redis and signs a short-lived access token bound to it.
//
// sts never calls providers, never widens what the subject token allowed,
// and answers every failure with an RFC 6749 error body, never a stack trace.
package sts
