package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Code is an OAuth error code (RFC 6749 §5.2, RFC 8693 §2.2.2) or one of
// this package's own. A Code is an error, so errors.Is(err,
// agent.InvalidScope) matches an *Error carrying it.
type Code string

func (c Code) Error() string { return string(c) }

// Codes an *Error may carry.
const (
	InvalidRequest       Code = "invalid_request"
	InvalidClient        Code = "invalid_client"
	InvalidGrant         Code = "invalid_grant"
	UnauthorizedClient   Code = "unauthorized_client"
	UnsupportedGrantType Code = "unsupported_grant_type"
	InvalidScope         Code = "invalid_scope"
	InvalidTarget        Code = "invalid_target"
	Unavailable          Code = "temporarily_unavailable"
	ServerError          Code = "server_error"

	// SessionRevoked: tollgate said the task session was revoked. The
	// TokenSource stops: a revoked task is not resurrected by a re-exchange.
	SessionRevoked Code = "session_revoked"
	// BadResponse: the server's answer was not an RFC 8693 response.
	BadResponse Code = "bad_response"
	// Unreachable: the request did not get an answer (network, timeout).
	Unreachable Code = "unreachable"
	// Misconfigured: the Config or Delegation is invalid; nothing was sent.
	Misconfigured Code = "misconfigured"
	// NoAttestation: the Attestor could not produce the agent's attestation.
	NoAttestation Code = "no_attestation"
	// NoSubject: the subject TokenSource could not produce a token.
	NoSubject Code = "no_subject"
)

// Error is a refused or failed token operation: what was attempted, the
// code, the server's own description, and what to do about it.
type Error struct {
	Op          string // "exchange", "delegate", "attest", "subject", "revoke", "config"
	Code        Code
	Description string // the server's error_description, or this package's
	Status      int    // the HTTP status, when there was an answer
	Err         error  // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "agent: %s", e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, " refused (%d %s)", e.Status, e.Code)
	} else {
		fmt.Fprintf(&b, " failed (%s)", e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if r := e.Remedy(); r != "" {
		b.WriteString(" — " + r)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches a Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Temporary reports whether the same request may succeed if retried later.
func (e *Error) Temporary() bool {
	return e.Code == Unavailable || e.Code == Unreachable || e.Code == ServerError || e.Status >= 500
}

// Remedy says what the caller can do about the error.
func (e *Error) Remedy() string {
	switch e.Code {
	case InvalidScope:
		if e.Op == "delegate" {
			return "a sub-agent gets at most its parent's scopes: ask for fewer (see the parent token's scope)"
		}
		return "ask for fewer scopes: a task token holds at most what the subject token and policy allow"
	case InvalidRequest:
		if e.Op == "delegate" {
			return "a sub-agent gets at most its parent's domains and budget: narrow Resources or Budgets"
		}
		return "fix the request as the description says"
	case InvalidGrant:
		return "the subject or actor token is invalid, expired or revoked: get fresh ones and create a new TokenSource"
	case InvalidClient, UnauthorizedClient:
		return "tollgate's policy does not let this agent do this: ask the operator to permit it"
	case InvalidTarget:
		return "leave Config.Resource empty, or set it to the server's /mcp URL"
	case Unavailable, ServerError:
		return "nothing was issued; retry shortly"
	case Unreachable:
		return "check the URL and that the server is up, then retry; nothing was issued"
	case SessionRevoked:
		return "the task was revoked: stop, and ask the human to start a new task"
	case BadResponse:
		return "check that Config.Issuer is tollgate's base URL"
	case NoAttestation:
		return "check the agent's attestation source (the JWT file, the dev attestor's URL)"
	case NoSubject:
		return "check the subject TokenSource (the human's token)"
	}
	return ""
}

// oauthError reads an RFC 6749 §5.2 error body; anything else becomes a
// BadResponse naming the status.
func oauthError(op string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var p struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Error == "" {
		return &Error{Op: op, Code: BadResponse, Status: resp.StatusCode,
			Description: fmt.Sprintf("not an OAuth error response (Content-Type %q)", resp.Header.Get("Content-Type"))}
	}
	return &Error{Op: op, Code: Code(p.Error), Status: resp.StatusCode, Description: p.Description}
}

// asError returns err as an *Error, or nil.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
