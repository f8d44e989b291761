// Package fault is tollgate's one error type: a stable code, a public message
// a person can act on, and an internal cause that never leaves the process.
//
// Errors are made where a decision is taken and translated once, at the edge
// (HTTP status, JSON-RPC code, tool error). Match them with errors.Is against
// a code sentinel or with CodeOf.
//
// Every code, wherever it is declared, has an entry in the registry
// (Registry, Lookup, HTTPStatus): its HTTP status, where it surfaces,
// whether a retry can help, and its meaning. A test fails on a code
// without an entry; docs/error-codes.md is generated from it.
//
// fault is a leaf: it imports no other tollgate package.
package fault

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable decision code such as "cap_exceeded".
type Code string

// Codes shared across packages. Packages may define more; a code is a
// contract with clients and never changes meaning.
const (
	Internal          Code = "internal"
	InvalidArgument   Code = "invalid_argument"
	NotFound          Code = "not_found"
	Unauthenticated   Code = "unauthenticated"
	InsufficientScope Code = "insufficient_scope"
	ResourceForbidden Code = "resource_forbidden"
	SessionRevoked    Code = "session_revoked"
	SessionExpired    Code = "session_expired"
	Unavailable       Code = "unavailable"

	// AccountRequired: the principal has linked no provider account, so
	// nothing can be done in one; account_connect links it.
	AccountRequired Code = "account_required"
	// AccountRelinkRequired: the linked account's credential was revoked,
	// expired past refresh or could not be refreshed; account_connect links
	// it again.
	AccountRelinkRequired Code = "account_relink_required"
	// BillingRequired: the step needs a payment method on file (and the
	// e-mail Stripe verified with it); billing_setup adds one.
	BillingRequired Code = "billing_required"
)

// Error carries a code, the public message and the internal cause.
type Error struct {
	Code   Code
	Public string // safe to show to the caller; says what to do
	Cause  error  // internal; logged, never returned to the caller
}

// New returns an error with a code and a public message.
func New(code Code, public string) *Error { return &Error{Code: code, Public: public} }

// Newf is New with formatting.
func Newf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Public: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with a code and public message whose cause is err.
func Wrap(err error, code Code, public string) *Error {
	return &Error{Code: code, Public: public, Cause: err}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Public, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Public)
}

func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error with the same code, so that
// errors.Is(err, fault.New(fault.NotFound, "")) works, and matches a Code.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// PublicOf returns the public message of err, or a generic message for
// errors that carry none (their cause is never shown).
func PublicOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Public != "" {
		return e.Public
	}
	return "internal error; nothing was charged or changed. Retry later or contact the operator."
}
