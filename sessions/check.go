package sessions

import (
	"context"
)

// Check is the per-call session check (SPEC §7 step 2): the session exists
// for principal, is active, has not expired by the Store's clock, and jti is
// not on the deny-list. It costs exactly one Redis round trip, an EVALSHA
// (plus one EVAL the first time a Redis node sees the script), and caches
// nothing, so a revocation is seen by the very next call on every replica.
//
// It returns nil only on a positive answer. Otherwise: fault.NotFound (no
// such session for this principal, including another principal's session
// id), fault.SessionRevoked, fault.SessionExpired, TokenRevoked, or
// fault.Unavailable when Redis errs, times out or answers anything unexpected.
func (s *Store) Check(ctx context.Context, principal, sid, jti string) error {
	if !validPrincipal(principal) || !validID(sid) {
		return errNotFound()
	}
	if !validJTI(jti) {
		return invalid("the token has no usable jti, so its session cannot be checked; nothing was charged or changed. Exchange for a new task token.")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// Run, not RunRO: a read-only script may be routed to a replica that has
	// not yet seen a revocation. The check must read the primary.
	code, err := s.scripts.check.Run(ctx, s.rdb,
		[]string{s.keys.sess(principal, sid), s.keys.jti(principal, jti)},
		ms(s.cfg.Now()), principal).Int64()
	if err != nil {
		// Fail closed: an error, a timeout or a nil reply is never "active".
		return unavailable("check", err, msgCheckDown)
	}
	return checkCode(code)
}

// checkCode maps the check script's reply to Check's answer.
func checkCode(code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeNotFound:
		return errNotFound()
	case codeRevoked:
		return errRevoked()
	case codeExpired:
		return errExpired()
	case codeTokenRevoked:
		return errTokenRevoked()
	default:
		return internal("check", "script replied %d", code)
	}
}
