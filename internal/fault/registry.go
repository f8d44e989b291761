package fault

import (
	"net/http"
	"sort"
)

// Surface is a set of the places where a code reaches someone outside the
// process. The empty set means the code is only ever logged.
type Surface uint8

const (
	// SurfaceTool: an isError tool result whose structured content is
	// {"error":{"code","message","provider_called"}} (tools.Refuse).
	SurfaceTool Surface = 1 << iota
	// SurfaceHTTP: the reason an HTTP request is refused, answered with
	// Spec.HTTP (at the OAuth endpoints, as RFC 6749 §5.2 has it).
	SurfaceHTTP
	// SurfaceCLI: an operator command's error (tollgate serve, stdio,
	// approvals, spend, session).
	SurfaceCLI
)

// Has reports whether s includes every surface of t.
func (s Surface) Has(t Surface) bool { return s&t == t }

// Spec is a code's contract with clients: how it looks at each edge,
// whether waiting helps, and what it means.
type Spec struct {
	Code Code
	// HTTP is the status an HTTP edge answers when this code refuses a
	// request. Every code has one, so that an edge can translate any
	// error; for a code without SurfaceHTTP it is the status it would have.
	HTTP int
	// HTTPNote says how an edge words the refusal when it does not send the
	// code itself (an RFC 6750 or RFC 6749 error), and which edge answers
	// another status than HTTP; "" when neither applies.
	HTTPNote string
	Surfaces Surface
	// Retryable: the same call, repeated unchanged later, can succeed
	// without anything else being called first. The public message says
	// when, and when a retry would not be safe.
	Retryable bool
	// Meaning is one line for the docs: what was decided and what to do.
	Meaning string
}

const (
	tool = SurfaceTool
	web  = SurfaceHTTP
	cli  = SurfaceCLI
)

// registry lists every code tollgate can emit. A code is declared where it
// is decided (this package holds only the shared ones), so the entries
// name codes by their strings; a test in this package scans the module's
// source and fails on a code without an entry, or an entry no code has.
// Keep it sorted by code.
func registry() []Spec {
	return []Spec{
		{"account_not_linked", http.StatusConflict, "", tool, true,
			"The human passed the account gate but no Cloudflare account came back from the consent page yet; call account_connect again once they finish there."},
		{"account_relink_required", http.StatusForbidden, "", tool, false,
			"The linked provider account's credential was revoked or can no longer be renewed; the human links it again with account_connect."},
		{"account_required", http.StatusForbidden, "", tool, false,
			"The principal has linked no provider account, so nothing can be done in one; link one with account_connect."},
		{"action_required", http.StatusConflict, "", tool, false,
			"Cloudflare paused the registration until the account owner acts in its dashboard; the held price stays counted. Poll the registration status instead of registering again."},
		{"ambiguous_record", http.StatusConflict, "", tool, false,
			"A DNS upsert matched several records and tollgate never guesses which to overwrite; nothing was changed. Name the record exactly."},
		{"answer_invalid", http.StatusBadRequest, "", tool, false,
			"The answer to a gate's question is missing or does not match its form; nothing was done. Call again and let the human answer."},
		{"approval_decided", http.StatusConflict, "", web | cli, false,
			"The approval was already decided; that decision stands and nothing was changed."},
		{"approval_denied", http.StatusForbidden, "", tool, false,
			"The human denied the approval; nothing was charged or changed. Do not retry the call."},
		{"approval_expired", http.StatusGone, "", tool | web | cli, false,
			"The approval outlived its TTL and can no longer be decided or used; call the tool again to ask for a new one."},
		{"approval_forbidden", http.StatusNotFound, "the approvals page answers 404, so it does not tell that the approval exists", web, false,
			"Someone other than the approval's principal tried to decide it; nothing was changed."},
		{"approval_mismatch", http.StatusForbidden, "", tool, false,
			"The approval was given for another session, tool or arguments; retry exactly the approved call, or ask for a new approval."},
		{"approval_pending", http.StatusConflict, "", tool, true,
			"The human has not decided the approval yet; nothing was charged or changed. Retry after it is approved."},
		{"approval_required", http.StatusForbidden, "", tool, false,
			"A human must approve this call first on the approvals page or with the CLI; then call again with the same arguments plus approval_id (in the error's details)."},
		{"approval_used", http.StatusConflict, "", tool, false,
			"The approval was already used once; call the tool again to ask for a new one."},
		{"billing_pending", http.StatusConflict, "", tool, true,
			"The human passed the billing gate but no payment method came back from Stripe yet; call billing_setup again once they finish there."},
		{"billing_required", http.StatusPaymentRequired, "", tool, false,
			"The step needs a payment method on file (and the e-mail Stripe verified with it); run billing_setup first."},
		{"budget_exceeded", http.StatusPaymentRequired, "", tool, false,
			"The purchase would take a task budget along the session chain past its maximum; nothing was charged. Ask for a larger task budget."},
		{"budget_required", http.StatusForbidden, "", tool, false,
			"A paid call needs a task budget for its provider in the token (tollgate:spend authorization details); nothing was charged."},
		{"cap_exceeded", http.StatusPaymentRequired, "", tool, false,
			"The purchase would take the principal's monthly cap for the provider past its limit; nothing was charged. The human or the operator raises the cap (the server's `--cap PROVIDER=AMOUNT`), or wait for next month."},
		{"card_declined", http.StatusPaymentRequired, "", tool, false,
			"Stripe declined the saved payment method; nothing was charged or started. The human can add another card with billing_setup."},
		{"checkout_expired", http.StatusGone, "the billing page answers 502, as for every Stripe error", web, false,
			"The Stripe Checkout session expired before a card was saved; nothing was charged. Start billing_setup again."},
		{"domain_unavailable", http.StatusConflict, "", tool, false,
			"The domain is taken, reserved or already registered; nothing was charged. Choose another name with domain_check."},
		{"gate_cancelled", http.StatusForbidden, "", tool, false,
			"The human cancelled the gate's question; nothing was done or charged."},
		{"gate_changed", http.StatusConflict, "", tool, false,
			"What the call would do changed since the human was asked or approved; nothing was done. Call again to ask again."},
		{"gate_declined", http.StatusForbidden, "", tool, false,
			"The human declined or did not approve; nothing was done or charged."},
		{"hold_conflict", http.StatusConflict, "", tool | cli, false,
			"The hold id is taken by another hold, or the hold was already settled in a way the request contradicts."},
		{"hold_expired", http.StatusGone, "", tool | cli, false,
			"The hold outlived its TTL and its amount was freed, so nothing was recorded; the operator reconciles a real charge with tollgate spend reconcile."},
		{"hold_not_found", http.StatusNotFound, "", tool | cli, false,
			"There is no hold with this id for this principal."},
		{"idempotency_conflict", http.StatusUnprocessableEntity, "", tool, false,
			"The idempotency key was used before with other arguments for this tool; nothing was charged. Use a new key, or repeat the original arguments."},
		{"idempotency_fence_lost", http.StatusConflict, "", 0, false,
			"A call's idempotency lock expired or was taken over before its result was stored or released, so a retry with the same key may run the call again."},
		{"in_progress", http.StatusConflict, "", tool, true,
			"An identical call with this idempotency key is still running; retry later to get its result."},
		{"insufficient_scope", http.StatusForbidden, "an RFC 6750 insufficient_scope challenge at /mcp", tool | web, false,
			"The task token lacks a scope the tool needs; exchange for a token with it."},
		{"internal", http.StatusInternalServerError, "server_error at the OAuth endpoints", tool | web | cli, false,
			"tollgate met something it did not expect and refused; nothing was charged or changed. The cause is in the server log."},
		{"invalid_amount", http.StatusBadRequest, "", tool | cli, false,
			"An amount is zero, negative, too large or in the wrong currency."},
		{"invalid_argument", http.StatusBadRequest, "invalid_request at the OAuth endpoints", tool | web | cli, false,
			"An argument is malformed or does not match the tool's input schema; nothing was charged or changed. Fix the call."},
		{"invalid_domain", http.StatusBadRequest, "", tool, false,
			"The text is not a valid domain name."},
		{"invalid_policy", http.StatusInternalServerError, "", cli, false,
			"The exchange policy file could not be read, parsed or checked; the server does not start until it is fixed."},
		{"lookalike_domain", http.StatusForbidden, "", tool, false,
			"The name looks like one of the task's domains but is not written exactly as it (lookalike letters, case, trailing dot, invisible character); nothing was charged."},
		{"loop_detected", http.StatusTooManyRequests, "", tool, false,
			"The same call was refused too often and is paused; change the arguments or fix the cause instead of repeating it."},
		{"not_found", http.StatusNotFound, "for a task session: 401 invalid_token at /mcp, 400 invalid_grant at /oauth/token", tool | web | cli, false,
			"No such session, approval or object for this principal; nothing was charged or changed."},
		{"payment_incomplete", http.StatusPaymentRequired, "", tool, false,
			"Stripe created the subscription but its first payment did not go through."},
		{"policy_denied", http.StatusBadRequest, "unauthorized_client or invalid_request at /oauth/token", web, false,
			"The exchange policy does not allow this token exchange; nothing was issued."},
		{"provider_error", http.StatusBadGateway, "", tool | web, true,
			"The provider failed, timed out or gave no readable answer; the message says whether the request may have reached it and whether a retry is safe."},
		{"provider_refused", http.StatusBadGateway, "", tool | web, false,
			"The provider refused the request (4xx, or an unsuccessful answer); nothing was charged. The message quotes the provider."},
		{"rate_limited", http.StatusTooManyRequests, "", tool, true,
			"The session or the principal made too many calls; retry after the time the message names. Nothing was charged."},
		{"resource_forbidden", http.StatusForbidden, "the Cloudflare sign-in page answers 502 (another e-mail than Stripe verified) or 503 (a zone outside the account)", tool | web, false,
			"The target (domain, zone, account) is not among those this task or principal may use; nothing was charged or changed."},
		{"secret_exists", http.StatusConflict, "", tool, false,
			"A secret of that name is already stored; a stored secret is never replaced. Choose another name."},
		{"session_expired", http.StatusUnauthorized, "invalid_token at /mcp, 400 invalid_grant at /oauth/token", tool | web, false,
			"The task session has expired; exchange for a new task token."},
		{"session_revoked", http.StatusUnauthorized, "invalid_token at /mcp, 400 invalid_grant at /oauth/token", tool | web, false,
			"The task session (or one above it) was revoked; ask the principal to start a new task."},
		{"state_expired", http.StatusGone, "", tool, false,
			"The human's answer to a gate came after it expired; call the tool again to ask anew."},
		{"state_invalid", http.StatusBadRequest, "", tool, false,
			"The gate's request state is missing, malformed, forged or sealed under a retired key; call again without inputResponses."},
		{"state_mismatch", http.StatusBadRequest, "", tool, false,
			"The gate's request state was issued for another principal, session, tool or arguments; call again with the arguments the human should approve."},
		{"state_replayed", http.StatusConflict, "", tool, false,
			"The gate's request state was already used once; call the tool again to ask anew."},
		{"token_revoked", http.StatusUnauthorized, "invalid_token at /mcp, 400 invalid_grant at /oauth/token", tool | web, false,
			"This task token was revoked although its session may be active; exchange for a new one."},
		{"too_many_requests", http.StatusTooManyRequests, "", tool | web, true,
			"Too many requests of this principal or task session are in flight, or too many MCP sessions or pending approvals are open; retry after the time given (Retry-After over HTTP). Nothing was done."},
		{"unauthenticated", http.StatusUnauthorized, "invalid_token at /mcp; 400 invalid_request or 401 invalid_client at the OAuth endpoints", tool | web | cli, false,
			"No valid token or attestation was presented; get a task token by token exchange."},
		{"unavailable", http.StatusServiceUnavailable, "temporarily_unavailable at /mcp and the OAuth endpoints", tool | web | cli, true,
			"A store tollgate depends on (Redis, signing keys) could not be reached, so it refused (fail closed); the message says what was left behind. Retry shortly."},
	}
}

// Registry returns every registered code's Spec, sorted by code. The slice
// is the caller's own.
func Registry() []Spec {
	r := registry()
	sort.Slice(r, func(i, j int) bool { return r[i].Code < r[j].Code })
	return r
}

// Lookup returns the Spec of code, and false for a code without one.
func Lookup(code Code) (Spec, bool) {
	for _, s := range registry() {
		if s.Code == code {
			return s, true
		}
	}
	return Spec{}, false
}

// HTTPStatus is the status an HTTP edge answers for err: its code's
// registered status, and 500 for an error without a registered code (a
// Go error escaping to the edge is a bug).
func HTTPStatus(err error) int {
	if s, ok := Lookup(CodeOf(err)); ok {
		return s.HTTP
	}
	return http.StatusInternalServerError
}
