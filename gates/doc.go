// Package gates holds everything that stands between an authorised tool
// call and a provider: human gates (elicitation, approvals), spend caps
// (holds, commit, release), idempotency and the loop guard. Each lives in a
// sub-package with one job.
//
// gates never parses a token and never calls a provider.
package gates
