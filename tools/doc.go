// Package tools defines tollgate's MCP tools (one tool a file) and the one
// middleware chain every tool runs through.
//
// A tool is a Tool value: its MCP definition with honest annotations, the
// scopes it needs, its gates, whether it is paid, and its handler. Register
// is the only way a tool reaches the MCP server, and it always wraps the
// handler in the chain, so a new tool cannot skip a step of the guard.
//
// tools never skips the guard, and no handler here talks to a provider except
// through an adapter it was given.
package tools
