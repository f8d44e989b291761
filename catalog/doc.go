// Package catalog is tollgate's service catalog: every Cloudflare and Stripe
// resource an agent can provision, with its list price, the MCP tool that
// provisions it, the scopes that tool needs and the human gates it may ask.
// It is modelled on the discovery catalog of the Cloudflare–Stripe agent
// provisioning protocol and is served as-is by GET /v1/catalog and the
// catalog_search and catalog_get tools. Quoting helpers for plan_quote build
// on it.
//
// The catalog is data compiled into the binary (catalog.json, embedded).
// Load parses and validates it; a catalog that fails validation is a build
// bug, never something to run with. A *Catalog is immutable after Load, safe
// for concurrent use, and hands out copies, so a caller cannot change what
// another caller sees.
//
// Prices are integer minor units with a currency and a billing interval. The
// domain prices are Cloudflare Registrar at-cost list prices as known on the
// date PricesAsOf reports; they are quotes, not the amount charged. The
// domain_check tool asks the Registrar API for the live price at call time.
//
// The catalog never does I/O beyond reading its embedded data: it does not
// call Cloudflare or Stripe, read files or the network, or consult Redis. It
// decides what a thing is and what it costs; whether the caller may buy it
// is decided by auth and gates.
package catalog
