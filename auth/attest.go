package auth

import (
	"context"
	"time"
)

// Agent is an attested workload (SPEC §3). ID is what policy, sessions and
// the audit trail name it by.
type Agent struct {
	ID     string
	Kind   string            // "jwt", "unix" or "dev"
	Expiry time.Time         // when the evidence stops being valid; zero for unix
	Detail map[string]string // how it was attested (issuer, uid, exe, …), for audit
}

// Agent kinds.
const (
	KindJWT  = "jwt"
	KindUnix = "unix"
	KindDev  = "dev"
)

// Evidence is what a caller presents to be attested: a workload JWT, or the
// pid of the peer process (the parent for stdio, SO_PEERCRED for a unix
// socket).
type Evidence struct {
	Token   string
	PeerPID int
}

// Attestor turns evidence into an Agent, or refuses with a *fault.Error
// whose cause is a *Rejection. An Attestor never trusts a stored key or a
// name the caller asserts.
type Attestor interface {
	Attest(ctx context.Context, ev Evidence) (Agent, error)
}

var (
	_ Attestor = (*JWTAttestor)(nil)
	_ Attestor = (*UnixAttestor)(nil)
)
