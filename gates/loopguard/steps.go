package loopguard

import (
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// AllowStep is Allow as a step of a fused script (internal/fuse): the same
// script, keys and arguments. The script goes on only when the call is
// allowed; the returned function reads the reply as Allow answers.
func (g *Guard) AllowStep(call Call) (fuse.Step, func(reply any) error, error) {
	if err := call.validate(); err != nil {
		return fuse.Step{}, nil, err
	}
	now := g.cfg.Now()
	step := fuse.Step{Name: "loop_allow", Body: allowLua, Continue: "r[1] == " + strconv.Itoa(codeOK),
		Keys: []string{g.keys.cooldown(call), g.keys.session(call.Principal, call.Session), g.keys.principal(call.Principal)},
		Args: []any{now.UnixMilli(), g.cfg.Window.Milliseconds(), g.cfg.PerSession, g.cfg.PerPrincipal, member(now)}}
	return step, func(reply any) error {
		r, ok := reply.([]any)
		if !ok || len(r) != 2 {
			return internal("allow", msgAllowOdd, "reply %v", reply)
		}
		code, ok1 := r[0].(int64)
		at, ok2 := r[1].(int64)
		if !ok1 || !ok2 {
			return internal("allow", msgAllowOdd, "reply %v", reply)
		}
		return g.allowCode(call, code, time.UnixMilli(at), now)
	}, nil
}
