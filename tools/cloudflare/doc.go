// Package cloudflare is tollgate's adapter to the Cloudflare Registrar API:
// domain availability and price, registration, and registration status.
// New-domain registration has no method in cloudflare-go v0.119.0, so every
// call goes through the SDK's raw request (API.Raw) to the documented
// endpoints (SPEC §11):
//
//	POST /accounts/{account_id}/registrar/domain-check
//	POST /accounts/{account_id}/registrar/registrations
//	GET  /accounts/{account_id}/registrar/registrations/{domain}/registration-status
//
// The client is built with the SDK's retries off: a repeated registration
// POST could buy a domain twice, and Cloudflare has no idempotency header
// (SPEC §9.2), so tollgate's idempotency table is the only guard. Requests
// go through the shared provider client (tools/provider), which records
// whether each reached the wire and follows no redirect, so neither a POST
// nor the credential is ever sent anywhere but the configured base URL.
//
// Every failure is a *fault.Error with code provider_error (5xx, timeout, no
// or unreadable answer), provider_refused (4xx), domain_unavailable or
// action_required, whose public message says whether the request may have
// reached Cloudflare and whether anything may have been charged. Its cause
// is a *CallError carrying the HTTP status, the cf-ray id for the audit
// trail and whether the request reached the provider; it is a
// provider.Error, so provider.Reached tells from any error that wraps it.
//
// The package never decides whether a caller may spend: holds, caps and
// tollgate:resources are checked before it is called. It never reads the
// token from anywhere but its Config (in production the server fills it
// from CLOUDFLARE_API_TOKEN, never from a flag), and never logs it.
package cloudflare
