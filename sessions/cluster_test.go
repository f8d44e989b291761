package sessions

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// startCluster runs a one-node Redis Cluster (all 16384 slots on one
// redis-server) for this test. One node is enough to prove the package keeps
// every script on one slot: Redis refuses scripts that declare or touch keys
// of two slots even when one node serves both.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	_ = l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", dir,
		"--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for node.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("cluster node did not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(node.ClusterInfo(ctx).Val(), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatal("cluster did not reach cluster_state:ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestWorksOnRedisCluster(t *testing.T) {
	cc := startCluster(t)
	ctx := context.Background()

	// The cluster has teeth: a script reaching a key of another slot fails.
	err := cc.Eval(ctx, "#!lua\nreturn redis.call('GET', ARGV[1])", []string{"tg:{a}:x"}, "tg:{b}:x").Err()
	if err == nil || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("cross-slot script: %v, want a slot error", err)
	}

	f := newFixtureOn(t, cc)
	f.store.scripts = scriptsWithHeader("#!lua\n")
	tr := f.tree()
	all := []Session{tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1, tr.other}
	for _, s := range all {
		wantCode(t, f.check(s), "")
	}
	brace := f.create("user:m}{x", member(alice, tr.b1.ID))
	wantCode(t, f.check(brace), "")

	if err := f.store.AddToken(ctx, alice, tr.a1.ID, HashToken("t"), f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.revokeJTI(tr.b, "jti-"+tr.b.ID)
	wantCode(t, f.check(tr.b), TokenRevoked)

	if _, err := f.store.Lookup(ctx, tr.x.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.store.List(ctx, ListFilter{})
	if err != nil || len(list) != len(all)+1 {
		t.Fatalf("list: %d sessions, %v", len(list), err)
	}
	node, err := f.store.Tree(ctx, alice, tr.root.ID)
	if err != nil || len(node.Children) != 2 {
		t.Fatalf("tree: %+v, %v", node, err)
	}

	got, err := f.store.Revoke(ctx, alice, tr.root.ID, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := ids(tr.root, tr.a, tr.b, tr.a1, tr.a2, tr.b1, tr.x, tr.x1, brace); !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	for _, s := range append(all[:8], brace) {
		wantCode(t, f.check(s), fault.SessionRevoked)
	}
	wantCode(t, f.check(tr.other), "")
	_, err = f.store.Create(ctx, Session{Principal: bob, Parent: tr.a.ID, ParentPrincipal: alice,
		Expires: f.clock.Now().Add(time.Minute)})
	wantCode(t, err, fault.SessionRevoked)
}
