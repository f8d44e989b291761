// Package edge stands in front of /mcp: no valid task token, no MCP (RFC
// 6750 §3 challenges naming the RFC 9728 metadata). It verifies the
// bearer token from the headers alone, bounds the requests in flight per
// principal and per task session, reads the body only then, checks a tool
// call's scopes once (tools.ScopeError; the guard does not again), binds
// each legacy MCP session to the principal that opened it, and audits
// every tool call it refuses.
//
// It never reads an anonymous request's body, never serves a tool itself
// (the guard in tools does, from the claims it puts in the context), and
// never lets one principal's token use another's MCP session.
//
// The rest of the HTTP surface (Host/Origin, body limits of anonymous
// requests, health, catalog, metadata) is routed in compose; the
// checks themselves live in internal/httpx.
package edge
