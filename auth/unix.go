package auth

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// UnixAttestorConfig configures attestation of a local peer process. Each
// non-empty allow-list must match (they are ANDed); all empty allows any
// executable of any user, which suits the sandbox only.
type UnixAttestorConfig struct {
	AllowExe    []string // absolute executable paths
	AllowSHA256 []string // hex SHA-256 of executables
	AllowUIDs   []int    // real user ids
}

// UnixAttestor attests the peer of a stdio pipe (its parent) or of a unix
// socket (SO_PEERCRED, see PeerPID) from /proc: uid, executable path and the
// SHA-256 of the executable actually running. Any read failure refuses.
type UnixAttestor struct {
	exe  map[string]bool
	sha  map[string]bool
	uids map[int]bool

	mu     sync.Mutex
	hashes map[fileID]string // executable hashes by inode and change time
}

// NewUnixAttestor validates cfg.
func NewUnixAttestor(cfg UnixAttestorConfig) (*UnixAttestor, error) {
	a := &UnixAttestor{hashes: map[fileID]string{}}
	for _, p := range cfg.AllowExe {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return nil, fmt.Errorf("auth: UnixAttestorConfig.AllowExe %q must be an absolute, clean path", p)
		}
		a.exe = setOf(a.exe, p)
	}
	for _, h := range cfg.AllowSHA256 {
		h = strings.ToLower(h)
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("auth: UnixAttestorConfig.AllowSHA256 %q must be 64 hex digits", h)
		}
		a.sha = setOf(a.sha, h)
	}
	for _, u := range cfg.AllowUIDs {
		if u < 0 {
			return nil, fmt.Errorf("auth: UnixAttestorConfig.AllowUIDs %d is not a uid", u)
		}
		a.uids = setOf(a.uids, u)
	}
	return a, nil
}

func setOf[K comparable](m map[K]bool, k K) map[K]bool {
	if m == nil {
		m = map[K]bool{}
	}
	m[k] = true
	return m
}

// StdioEvidence is the evidence of a stdio server: its parent, the MCP
// client that launched it.
func StdioEvidence() Evidence { return Evidence{PeerPID: os.Getppid()} }

// UnixAgentID renders the agent id of a unix peer (SPEC §3).
func UnixAgentID(uid int, exe, sha256hex string) string {
	return "unix:uid=" + strconv.Itoa(uid) + ":exe=" + exe + ":sha256=" + sha256hex
}

// peer is what /proc says about a process.
type peer struct {
	uid    int
	exe    string
	sha256 string
}

// fileID identifies an executable's content: a rewrite changes its ctime.
type fileID struct {
	dev, ino   uint64
	size       int64
	ctimeNanos int64
}

// Attest inspects ev.PeerPID.
func (a *UnixAttestor) Attest(ctx context.Context, ev Evidence) (Agent, error) {
	refuse := func(r *Rejection) (Agent, error) {
		return Agent{}, fault.Wrap(r, fault.Unauthenticated,
			"the local client process could not be attested ("+string(r.Reason)+"); start tollgate directly from your MCP client as your own user, or present a workload token. Nothing was charged or changed.")
	}
	if ev.PeerPID <= 0 {
		return refuse(rejection(ReasonMissingEvidence, "no peer pid"))
	}
	// A stdio server whose parent exited is re-parented to init: pid 1 is
	// never the client.
	if ev.PeerPID == 1 {
		return refuse(rejection(ReasonPeerAmbiguous, "peer is pid 1"))
	}
	if err := ctx.Err(); err != nil {
		return refuse(&Rejection{Reason: ReasonPeerUnreadable, Err: err})
	}
	p, r := a.inspect(ev.PeerPID)
	if r != nil {
		return refuse(r)
	}
	if a.exe != nil && !a.exe[p.exe] || a.sha != nil && !a.sha[p.sha256] || a.uids != nil && !a.uids[p.uid] {
		return refuse(rejection(ReasonPeerNotAllowed, "uid %d exe %s sha256 %s", p.uid, p.exe, p.sha256))
	}
	return Agent{
		ID:   UnixAgentID(p.uid, p.exe, p.sha256),
		Kind: KindUnix,
		Detail: map[string]string{
			"pid": strconv.Itoa(ev.PeerPID), "uid": strconv.Itoa(p.uid),
			"exe": p.exe, "sha256": p.sha256,
		},
	}, nil
}

// cachedHash returns a remembered executable hash; hashes are kept for at
// most maxHashCache executables.
func (a *UnixAttestor) cachedHash(id fileID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.hashes[id]
	return h, ok
}

const maxHashCache = 64

func (a *UnixAttestor) rememberHash(id fileID, h string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.hashes) >= maxHashCache {
		clear(a.hashes)
	}
	a.hashes[id] = h
}
