package policy

import "github.com/tollgate-dev/tollgate/internal/fault"

// Decision codes owned by this package.
const (
	// InvalidPolicy: a policy file could not be read, parsed or checked.
	InvalidPolicy fault.Code = "invalid_policy"
	// PolicyDenied: the exchange policy did not allow the request.
	PolicyDenied fault.Code = "policy_denied"
)
