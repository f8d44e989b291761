//go:build !linux

package auth

import (
	"errors"
	"net"
)

// inspect needs /proc; elsewhere unix attestation refuses.
func (a *UnixAttestor) inspect(pid int) (peer, *Rejection) {
	return peer{}, rejection(ReasonUnsupported, "unix attestation needs Linux /proc")
}

// PeerPID needs SO_PEERCRED; elsewhere it fails.
func PeerPID(c *net.UnixConn) (int, error) {
	return 0, errors.New("auth: peer credentials need Linux SO_PEERCRED")
}
