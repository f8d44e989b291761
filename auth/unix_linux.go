//go:build linux

package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// inspect reads /proc/<pid>. The process start time is read before and
// after, so a pid that exited and was reused in between is refused.
func (a *UnixAttestor) inspect(pid int) (peer, *Rejection) {
	dir := "/proc/" + strconv.Itoa(pid)
	unreadable := func(what string, err error) (peer, *Rejection) {
		return peer{}, &Rejection{Reason: ReasonPeerUnreadable, Detail: what + " of pid " + strconv.Itoa(pid), Err: err}
	}
	start, err := startTime(dir)
	if err != nil {
		return unreadable("start time", err)
	}
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return unreadable("exe link", err)
	}
	// The file at the path was replaced or removed since the process
	// started: the path no longer names what runs.
	if strings.HasSuffix(exe, " (deleted)") {
		return peer{}, rejection(ReasonPeerAmbiguous, "pid %d runs a deleted executable %s", pid, exe)
	}
	// Paths end up in ids, logs and the audit trail.
	if !printableASCIIOrSpace(exe) {
		return peer{}, rejection(ReasonPeerAmbiguous, "pid %d executable path has control or non-ASCII characters", pid)
	}
	uid, euid, err := uids(dir)
	if err != nil {
		return unreadable("status", err)
	}
	// A setuid peer has two identities; which one is the agent is
	// ambiguous, so neither is.
	if uid != euid {
		return peer{}, rejection(ReasonPeerAmbiguous, "pid %d has uid %d but euid %d", pid, uid, euid)
	}
	// Hash the image through /proc/<pid>/exe, which is the running inode,
	// not whatever the path names now.
	sum, err := a.hashExe(dir + "/exe")
	if err != nil {
		return unreadable("executable", err)
	}
	if again, err := startTime(dir); err != nil || again != start {
		return peer{}, rejection(ReasonPeerAmbiguous, "pid %d changed while being attested", pid)
	}
	return peer{uid: uid, exe: exe, sha256: sum}, nil
}

func (a *UnixAttestor) hashExe(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("no stat for %s", path)
	}
	id := fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, ctimeNanos: st.Ctim.Nano()}
	if h, ok := a.cachedHash(id); ok {
		return h, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	a.rememberHash(id, sum)
	return sum, nil
}

// startTime is field 22 of /proc/<pid>/stat, counted after the command
// name, which may itself contain spaces and parentheses.
func startTime(dir string) (string, error) {
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return "", err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("unparsable stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")" come fields 3 (state) onwards; starttime is field 22.
	if len(f) < 20 {
		return "", fmt.Errorf("short stat")
	}
	return f[19], nil
}

// uids reads the real and effective uid from /proc/<pid>/status.
func uids(dir string) (uid, euid int, err error) {
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		if uid, err = strconv.Atoi(f[0]); err != nil {
			return 0, 0, err
		}
		if euid, err = strconv.Atoi(f[1]); err != nil {
			return 0, 0, err
		}
		return uid, euid, nil
	}
	return 0, 0, fmt.Errorf("no Uid line in status")
}

func printableASCIIOrSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// PeerPID returns the pid of the process at the other end of a unix socket
// (SO_PEERCRED, recorded by the kernel at connect time).
func PeerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("auth: peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("auth: peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, fmt.Errorf("auth: peer credentials: %w", cerr)
	}
	if cred.Pid <= 0 {
		return 0, fmt.Errorf("auth: peer credentials carry no pid")
	}
	return int(cred.Pid), nil
}
