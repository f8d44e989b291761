// Package flows serves the URL-mode flows (SPEC §8, §11): from a pending
// billing or authentication approval on the approvals page, the signed-in
// human continues to Stripe Checkout or to Cloudflare's OAuth consent, and
// comes back to a callback here that records what was linked and approves.
//
// It owns the flow cookie (tg_flow) and the flow's server-side record
// between start and callback (flowstate, under the approval id). It acts
// only for the principal signed in on the page, and only in the browser
// that started the flow.
//
// It never signs anyone in (web/approvals does), never verifies task
// tokens, never returns a provider credential to a browser or an agent
// (tokens are sealed by internal/links), and never links an account whose
// consenting e-mail differs from the one Stripe verified.
package flows
