package sts

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// RFC 6749 §5.2 and RFC 8693 §2.2.2 error codes.
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidScope         = "invalid_scope"
	ErrInvalidTarget        = "invalid_target"
	ErrUnavailable          = "temporarily_unavailable"
	ErrServerError          = "server_error"
)

// Error is an OAuth error response: the code, a description a person can
// act on, the HTTP status, and the internal cause (logged, never sent).
type Error struct {
	Code        string
	Description string
	Status      int
	Cause       error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("sts: %s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return fmt.Sprintf("sts: %s: %s", e.Code, e.Description)
}

func (e *Error) Unwrap() error { return e.Cause }

func oauthErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// fromFault translates an error of another package into an OAuth error:
// Redis trouble is temporarily_unavailable (503, fail closed), anything
// unexpected a server_error, everything else code with the public message.
func fromFault(err error, code string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch fault.CodeOf(err) {
	case fault.Unavailable:
		return &Error{Code: ErrUnavailable, Description: fault.PublicOf(err), Status: http.StatusServiceUnavailable, Cause: err}
	case fault.Internal:
		return &Error{Code: ErrServerError, Description: "internal error; no token was issued", Status: http.StatusInternalServerError, Cause: err}
	}
	return &Error{Code: code, Description: fault.PublicOf(err), Status: http.StatusBadRequest, Cause: err}
}
