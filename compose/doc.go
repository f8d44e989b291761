// Package app wires tollgate together from a validated config: the Redis
// client, the catalog, the MCP server with every tool behind one middleware
// chain, and the HTTP surface. It is the composition root that cmd/tollgate
// and the tests share; it holds no business rules.
package compose
