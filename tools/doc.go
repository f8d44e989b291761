// Package tools defines tollgate's MCP tools (one tool a file) and the guard
// every tool call runs through.
//
// A tool is a Tool value: its MCP definition with honest annotations, the
// scopes it needs, its gates, whether it is paid, and its typed behaviour
// (handler[A, R]): a quote for paid tools, the human gates it asks, and a
// handler that gets a Call[A] — the arguments bound once into A, the
// verified caller, the canonical target, the principal's own account and
// the hold — and returns its result R, and for a paid tool the Charge.
// Nothing of a call travels through the context in either direction.
//
// NewServer is the only way a tool reaches an MCP server, and it serves
// every tool through the guard (guard.call → guard.steps → pipelineCall):
// steps 1–10 of SPEC §7, in order, with the audit entry of every call. The
// handler is unexported, so a tool cannot be served around it. The one
// exception is NewUnguardedServer, the benchmark's named bare mode, which a
// test confines to bench/.
//
// tools never skips the guard, and no handler here talks to a provider except
// through an adapter it was given.
package tools
