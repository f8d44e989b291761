package human

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startCluster runs a one-node Redis Cluster (all 16384 slots on one
// redis-server) for this test. One node is enough to prove the package keeps
// every script on one slot: with the "#!lua" header Redis refuses scripts
// that touch keys of two slots even when one node serves both.
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
	for _, p := range craftedPrincipals {
		f := newFixtureOn(t, cc)
		f.approvals.scripts = scriptsWithHeader("#!lua\n")
		b := call
		b.Principal = p
		tok := f.seal(b)
		_, err := f.sealer.Open(ctx, tok, b)
		wantCode(t, err, "")
		_, err = f.sealer.Open(ctx, tok, b)
		wantCode(t, err, StateReplayed)

		a := f.create(purchase(b))
		_, err = f.approvals.Decide(ctx, a.ID, bob, true, "page")
		wantCode(t, err, ApprovalForbidden)
		f.decide(a.ID, p, true)
		_, err = f.approvals.Consume(ctx, a.ID, b)
		wantCode(t, err, "")
		if got, err := f.approvals.Get(ctx, a.ID); err != nil || got.Status != StatusUsed {
			t.Fatalf("%q: get %+v, %v", p, got, err)
		}
		if l, err := f.approvals.List(ctx, p, false); err != nil || len(l) == 0 {
			t.Fatalf("%q: list %v, %v", p, l, err)
		}
		if err := f.consents.Remember(ctx, p, "stripe", Billing, ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := f.consents.Has(ctx, p, "stripe", Billing, ""); !ok || err != nil {
			t.Fatalf("%q: has %v, %v", p, ok, err)
		}
	}
}
