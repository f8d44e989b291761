// Package bench measures what tollgate's guard costs, side by side with a
// guard-less baseline, in one run against a real redis-server on loopback
// that it starts itself (SPEC §13, §15; `make bench`).
//
// It owns the load generator, the counting of Redis round trips, and the
// one table it prints. It never runs in `make test`, asserts no timing, and
// is never linked into the tollgate binary: only cmd/tollgate-bench uses it.
//
// Everything it measures is built the way production builds it: the App
// from a sandbox config (compose), the same MCP server options, the same
// HTTP wrappers. The baseline is the same tool handler registered on a
// second MCP server with no middleware at all.
package bench
