package sessions

import (
	"strconv"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// CheckStep is Check as a step of a fused script (internal/fuse): the same
// script, keys and arguments, so a call's session is checked in the same
// round trip as the guard's other steps of that principal. The script goes
// on only when the session is live; CheckReply reads the reply.
func (s *Store) CheckStep(principal, sid, jti string) (fuse.Step, error) {
	if !validPrincipal(principal) || !validID(sid) {
		return fuse.Step{}, errNotFound()
	}
	if !validJTI(jti) {
		return fuse.Step{}, invalid("the token has no usable jti, so its session cannot be checked; nothing was charged or changed. Exchange for a new task token.")
	}
	return fuse.Step{Name: "session_check", Body: checkLua, Continue: "r == " + strconv.Itoa(codeOK),
		Keys: []string{s.keys.sess(principal, sid), s.keys.jti(principal, jti)},
		Args: []any{ms(s.cfg.Now()), principal}}, nil
}

// CheckReply reads CheckStep's reply as Check answers.
func CheckReply(reply any) error {
	code, ok := reply.(int64)
	if !ok {
		return internal("check", "script replied %v", reply)
	}
	return checkCode(code)
}
