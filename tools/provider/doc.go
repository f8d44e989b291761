// Package provider decides one fact about every call tollgate makes to a
// provider (Cloudflare, Stripe): whether the request reached it, or may
// have. That fact says whether anything may have been done or charged, and
// tool errors report it as provider_called.
//
// It owns two things the adapters share:
//
//   - the HTTP client every adapter sends through (NewClient): it records,
//     per call (Record), whether the request's headers were written to the
//     wire, the answer's status, the provider's request id (cf-ray,
//     Request-Id), Retry-After and a bounded copy of a non-2xx body; and it
//     follows no redirect, so neither a POST nor a credential is re-sent
//     anywhere else;
//   - the error contract (Error, Reached): an adapter's error says whether
//     its request reached the provider, and any error wrapping it says so
//     too, so no caller passes that fact by hand. AfterCall and BeforeCall
//     state it for a refusal that is not itself a provider's error.
//
// The package never retries, never sets a credential, never reads a
// provider's answer beyond the status, headers and an error body, and
// never decides what a failure means for money or which code it gets: the
// adapters do that.
package provider
