package sessions

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// TokenRevoked is the code for a call whose token id (jti) is on the
// deny-list while its session may still be active.
const TokenRevoked fault.Code = "token_revoked"

// Reply codes of the Lua scripts. Zero is never "ok", so a nil or defaulted
// reply cannot pass.
const (
	codeOK           = 1
	codeNotFound     = 2
	codeRevoked      = 3
	codeExpired      = 4
	codeTokenRevoked = 5
	codeExists       = 6
)

func errNotFound() error {
	return fault.New(fault.NotFound,
		"no such task session for this principal; nothing was charged or changed. Check the session id, or start a new task with a token exchange.")
}

func errRevoked() error {
	return fault.New(fault.SessionRevoked,
		"the task session has been revoked; nothing was charged or changed. Ask the principal to start a new task.")
}

func errExpired() error {
	return fault.New(fault.SessionExpired,
		"the task session has expired; nothing was charged or changed. Exchange for a new task token.")
}

func errTokenRevoked() error {
	return fault.New(TokenRevoked,
		"this token has been revoked; nothing was charged or changed. Exchange for a new task token.")
}

func invalid(format string, args ...any) error {
	return fault.Newf(fault.InvalidArgument, format, args...)
}

// unavailable wraps a Redis failure. public says what the caller should
// know about the state left behind.
func unavailable(op string, err error, public string) error {
	return fault.Wrap(fmt.Errorf("sessions: %s: %w", op, err), fault.Unavailable, public)
}

// Public messages for a failed Redis operation, by what it leaves behind.
const (
	msgCheckDown  = "the session store could not be reached, so the call was refused; nothing was charged or changed. Retry shortly."
	msgReadDown   = "the session store could not be reached; nothing was changed. Retry shortly."
	msgWriteDown  = "the session store could not be reached; the session was not created or updated. Retry shortly."
	msgRevokeDown = "the session store could not be reached, so the revocation may be incomplete. Retry: revoking is idempotent."
)

// internal reports a reply the package does not understand; it refuses.
func internal(op string, format string, args ...any) error {
	return fault.Wrap(fmt.Errorf("sessions: %s: "+format, append([]any{op}, args...)...), fault.Internal,
		"the session store returned an unexpected answer, so the call was refused; nothing was charged or changed. Contact the operator.")
}

// parentError explains why a sub-session could not be created.
func parentError(code int64) error {
	switch code {
	case codeRevoked:
		return fault.New(fault.SessionRevoked,
			"the parent task session has been revoked, so no sub-session was created. Ask the principal to start a new task.")
	case codeExpired:
		return fault.New(fault.SessionExpired,
			"the parent task session has expired, so no sub-session was created. Exchange for a new task token.")
	default:
		return fault.New(fault.NotFound,
			"the parent task session does not exist for its principal, so no sub-session was created. Check the parent session id.")
	}
}
