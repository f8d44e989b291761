//go:build linux && !nosandbox

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// self is what the unix attestor should find for the test process.
func self(t *testing.T) (exe, sum string) {
	exe, err := os.Readlink("/proc/self/exe")
	must(t, err)
	b, err := os.ReadFile(exe)
	must(t, err)
	h := sha256.Sum256(b)
	return exe, hex.EncodeToString(h[:])
}

func TestUnixAttestorSelf(t *testing.T) {
	ctx := context.Background()
	exe, sum := self(t)
	uid := os.Getuid()

	open, err := NewUnixAttestor(UnixAttestorConfig{})
	must(t, err)
	a, err := open.Attest(ctx, Evidence{PeerPID: os.Getpid()})
	must(t, err)
	if want := UnixAgentID(uid, exe, sum); a.ID != want || a.Kind != KindUnix || !a.Expiry.IsZero() || a.Detail["sha256"] != sum {
		t.Fatalf("agent %+v; want id %s", a, want)
	}
	// Second attestation comes from the hash cache and agrees.
	again, err := open.Attest(ctx, Evidence{PeerPID: os.Getpid()})
	must(t, err)
	if again.ID != a.ID {
		t.Fatalf("cached attestation %s != %s", again.ID, a.ID)
	}

	allowed := []UnixAttestorConfig{
		{AllowSHA256: []string{sum}},
		{AllowExe: []string{exe}, AllowUIDs: []int{uid}},
	}
	for _, cfg := range allowed {
		att, err := NewUnixAttestor(cfg)
		must(t, err)
		if _, err := att.Attest(ctx, Evidence{PeerPID: os.Getpid()}); err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}

	gone := exec.Command("true")
	must(t, gone.Run())
	refused := []struct {
		name   string
		cfg    UnixAttestorConfig
		pid    int
		reason Reason
	}{
		{"hash not allowed", UnixAttestorConfig{AllowSHA256: []string{hex.EncodeToString(make([]byte, 32))}}, os.Getpid(), ReasonPeerNotAllowed},
		{"exe not allowed", UnixAttestorConfig{AllowExe: []string{"/usr/bin/true"}}, os.Getpid(), ReasonPeerNotAllowed},
		{"uid not allowed", UnixAttestorConfig{AllowUIDs: []int{uid + 1}}, os.Getpid(), ReasonPeerNotAllowed},
		{"right exe, wrong hash", UnixAttestorConfig{AllowExe: []string{exe}, AllowSHA256: []string{hex.EncodeToString(make([]byte, 32))}}, os.Getpid(), ReasonPeerNotAllowed},
		{"exited process", UnixAttestorConfig{}, gone.Process.Pid, ReasonPeerUnreadable},
		{"no pid", UnixAttestorConfig{}, 0, ReasonMissingEvidence},
		{"init as parent", UnixAttestorConfig{}, 1, ReasonPeerAmbiguous},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			att, err := NewUnixAttestor(c.cfg)
			must(t, err)
			_, err = att.Attest(ctx, Evidence{PeerPID: c.pid})
			wantRefusal(t, err, fault.Unauthenticated, c.reason)
		})
	}

	for _, cfg := range []UnixAttestorConfig{
		{AllowExe: []string{"bin/x"}},
		{AllowExe: []string{"/usr/../bin/x"}},
		{AllowSHA256: []string{"abc"}},
		{AllowUIDs: []int{-1}},
	} {
		if _, err := NewUnixAttestor(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestPeerPID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tg.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	must(t, err)
	defer l.Close()
	client, err := net.Dial("unix", path)
	must(t, err)
	defer client.Close()
	server, err := l.AcceptUnix()
	must(t, err)
	defer server.Close()
	pid, err := PeerPID(server)
	must(t, err)
	if pid != os.Getpid() {
		t.Fatalf("peer pid %d; want %d", pid, os.Getpid())
	}
}
