// Package auth decides who is calling tollgate and on whose behalf.
//
// It owns the attestation of agents (workload JWTs, the unix peer of a stdio
// or socket connection, the sandbox's dev signer), verifying and issuing
// tokens, the RFC 8693 token exchange, the OAuth metadata, JWKS,
// introspection and revocation endpoints, and the exchange policy
// (auth/policy).
//
// Every token tollgate accepts goes through one hardened JWT verification
// core (Verifier): the algorithm is pinned, the key comes only from a
// configured KeySource (never from a URL or a key embedded in the token),
// and the token's type, issuer and audience must match exactly. Tollgate's
// own signing keys are Ed25519 keys generated in memory by each replica
// (KeyRing); only their public halves are published to Redis, with an
// expiry, so that every live replica can verify what any other issued.
//
// A rejection is a *fault.Error with code fault.Unauthenticated (or
// fault.Unavailable when the key store cannot be read) whose cause is a
// *Rejection carrying a stable Reason; use ReasonOf to read it.
//
// auth never calls a provider (Cloudflare, Stripe) and never fetches
// anything named by a token (jku, x5u).
package auth
