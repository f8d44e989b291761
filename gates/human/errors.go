package human

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Decision codes of sealed states (Sealer.Open). A code is a contract with
// clients and never changes meaning.
const (
	// StateInvalid: the request state is not one this deployment sealed:
	// truncated, not base64url, of the wrong length, forged or tampered
	// with, sealed under another deployment's key, or sealed under a key
	// that has since been replaced. Also the answer to an accept without
	// any state (inputResponses in a first call).
	StateInvalid fault.Code = "state_invalid"
	// StateExpired: the state is genuine but its answer came too late.
	StateExpired fault.Code = "state_expired"
	// StateMismatch: the state is genuine but was issued for another
	// principal, session, tool or arguments.
	StateMismatch fault.Code = "state_mismatch"
	// StateReplayed: the state was already used once.
	StateReplayed fault.Code = "state_replayed"
)

// Decision codes of approvals. Unknown ids, and in Consume the ids of
// another principal, are fault.NotFound.
const (
	// ApprovalForbidden: Decide by someone who is not the approval's
	// principal.
	ApprovalForbidden fault.Code = "approval_forbidden"
	// ApprovalExpired: the approval outlived its TTL; it can no longer be
	// decided or used.
	ApprovalExpired fault.Code = "approval_expired"
	// ApprovalDecided: Decide on an approval already approved, denied or used.
	ApprovalDecided fault.Code = "approval_decided"
	// ApprovalPending: Consume before the human decided.
	ApprovalPending fault.Code = "approval_pending"
	// ApprovalDenied: Consume of a denied approval.
	ApprovalDenied fault.Code = "approval_denied"
	// ApprovalUsed: Consume of an approval already used once.
	ApprovalUsed fault.Code = "approval_used"
	// ApprovalMismatch: Consume for another session, tool or arguments
	// than the approval was asked for.
	ApprovalMismatch fault.Code = "approval_mismatch"
)

// Reply codes of the Lua scripts (the first element of every reply). Zero
// is never "ok", so a nil or defaulted reply cannot pass.
const (
	rOK       = 1 // done; record follows where the script returns one
	rNotFound = 2 // no record under this principal
	rExists   = 3 // the id is taken
	rDecided  = 4
	rExpired  = 5
	rPending  = 6
	rDenied   = 7
	rUsed     = 8
	rMismatch = 9
	rUnknown  = 10 // a record in a state the package does not know
	rListed   = 11 // records follow
	rTooMany  = 12 // the principal has too many approvals pending
)

func invalid(format string, args ...any) error {
	return fault.Newf(fault.InvalidArgument, format, args...)
}

// unavailable wraps a Redis failure. public says what the caller should
// know about the state left behind.
func unavailable(op string, err error, public string) error {
	return fault.Wrap(fmt.Errorf("human: %s: %w", op, err), fault.Unavailable, public)
}

// internal reports a reply or record the package does not understand; it
// refuses.
func internal(op string, format string, args ...any) error {
	return fault.Wrap(fmt.Errorf("human: %s: "+format, append([]any{op}, args...)...), fault.Internal,
		"the gate store returned an unexpected answer, so the call was refused; nothing was charged or changed. Contact the operator.")
}

// Public messages for a failed Redis operation, by what it leaves behind.
const (
	msgGateDown   = "the gate store could not be reached, so the answer was not accepted; nothing was charged or changed. Retry shortly."
	msgKeyDown    = "the gate store could not be reached to load the sealing key, so no gate can be asked; nothing was charged or changed. Retry shortly."
	msgWriteDown  = "the gate store could not be reached; the approval was not recorded and nothing was charged or changed. Retry shortly."
	msgDecideDown = "the gate store could not be reached, so the decision was not recorded; nothing was charged or changed. Retry: deciding again is safe."
	msgReadDown   = "the gate store could not be reached; nothing was charged or changed. Retry shortly."
)

// The refusals. Each says what happened, that nothing was done, and what
// to do; none says anything about a state or approval the caller does not own.
var (
	errStateInvalid = fault.New(StateInvalid,
		"the gate's request state is missing, malformed or was not issued by this server, so the answer was refused; nothing was charged or changed. "+
			"Call the tool again without inputResponses and let the human answer the new question.")
	errStateStale = fault.New(StateInvalid,
		"the gate's request state was sealed under a key this server no longer uses, so the answer was refused; nothing was charged or changed. "+
			"Call the tool again without inputResponses and let the human answer the new question.")
	errStateExpired = fault.New(StateExpired,
		"the human's answer came after the gate expired, so it was refused; nothing was charged or changed. Call the tool again to ask anew.")
	errStateMismatch = fault.New(StateMismatch,
		"the gate's request state was issued for another principal, session, tool or arguments, so the answer was refused; nothing was charged or changed. "+
			"Call the tool again with the arguments the human should approve.")
	errStateReplayed = fault.New(StateReplayed,
		"the gate's request state was already used once, so the answer was refused; nothing was charged or changed. Call the tool again to ask anew.")

	errApprovalNotFound = fault.New(fault.NotFound,
		"there is no such approval for this principal; nothing was charged or changed. Check the approval id, or call the tool again to ask for a new one.")
	errApprovalForbidden = fault.New(ApprovalForbidden,
		"only the principal the approval was asked for may decide it; nothing was changed. Sign in as that principal.")
	errApprovalExpired = fault.New(ApprovalExpired,
		"the approval expired, so it can no longer be decided or used; nothing was charged or changed. Call the tool again to ask for a new approval.")
	errApprovalDecided = fault.New(ApprovalDecided,
		"the approval was already decided; the decision stands and nothing was changed.")
	errApprovalPending = fault.New(ApprovalPending,
		"the human has not decided the approval yet; nothing was charged or changed. Retry after it is approved.")
	errApprovalDenied = fault.New(ApprovalDenied,
		"the human denied the approval; nothing was charged or changed. Do not retry this call.")
	errApprovalUsed = fault.New(ApprovalUsed,
		"the approval was already used once; nothing new was charged or changed. Call the tool again to ask for a new approval.")
	errApprovalMismatch = fault.New(ApprovalMismatch,
		"the approval was given for another session, tool or arguments; nothing was charged or changed. Retry with exactly the call the human approved, or ask for a new approval.")
)

// refuse returns a copy of one of the refusals above, so that no caller can
// change the shared value.
func refuse(e *fault.Error) error {
	c := *e
	return &c
}
