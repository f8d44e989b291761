// Package signin is the approvals page's OpenID Connect client: it signs a
// human in at the configured identity provider with the authorization code
// flow, PKCE (S256) and a nonce (OpenID Connect Core §3.1, RFC 7636, RFC
// 9700 §2.1.1), and says who signed in.
//
// It owns the protocol: discovery and ID token verification (issuer,
// audience, expiry, signature) with coreos/go-oidc, the code exchange with
// x/oauth2, and the nonce check go-oidc leaves to its caller. It keeps no
// state: Begin returns the Request the caller must keep server-side until
// the callback, and Finish consumes it. It never decides what a signed-in
// human may do, never sets a cookie and never stores anything.
//
// The principal of a signed-in human is "user:" + the ID token's sub, the
// same name the token exchange gives a subject token of the same issuer
// (auth.SubjectClaims.Principal), so that the human who signs in is the
// principal their agents act for. The e-mail claims are reported, never
// used to name anyone.
package signin
