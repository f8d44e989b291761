// Package e2e drives a built tollgate binary with a client nobody on this
// project wrote: the official TypeScript MCP SDK (SPEC §14), over Streamable
// HTTP and over stdio. The client is e2e/ts/client.mjs, installed with
// `make e2e-deps`. It owns no production code and is imported by nothing.
package e2e
