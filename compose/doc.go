// Package compose builds tollgate from a validated config: the Redis
// client, the stores, the providers, the MCP server with every tool behind
// the one guard (tools.NewServer), and the HTTP surface, whose parts are
// packages of their own (web/edge, web/approvals, web/flows). It is the
// composition root that cmd/tollgate, the benchmark and the tests share,
// and it holds the sandbox seam: sandbox.go links the fake providers and
// the dev identity; a production build (-tags nosandbox) gets
// sandbox_off.go and links none of them.
//
// It holds no business rules and owns no Redis keys: every key belongs to
// the store that reads it (internal/rediskey lists them). No package but
// cmd/tollgate, bench and tests imports it.
package compose
