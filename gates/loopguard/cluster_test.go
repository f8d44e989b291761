package loopguard

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
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
	// The cluster has teeth: a script reaching a key of another slot fails.
	err := cc.Eval(context.Background(), "#!lua\nreturn redis.call('GET', ARGV[1])", []string{"tg:{a}:x"}, "tg:{b}:x").Err()
	if err == nil || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("cross-slot script: %v, want a slot error", err)
	}
	f := newFixtureOn(t, cc, Config{})
	f.guard.scripts = scriptsWithHeader("#!lua\n")
	exerciseEverything(t, f)
}

// The sandbox runs on miniredis (embedded, gopher-lua): every script must
// work there too.
func TestWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseEverything(t, newFixtureOn(t, rdb, Config{}))
}

// exerciseEverything runs every operation of the Guard across crafted
// principals and checks the outcomes.
func exerciseEverything(t *testing.T, f *fixture) {
	t.Helper()
	for _, p := range craftedPrincipals {
		c := call("s1")
		c.Principal = p
		f.allowN(c, DefaultPerSession)
		wantCode(t, f.allow(c), RateLimited)
		c.Session = "s2"
		f.allowN(c, DefaultPerPrincipal-DefaultPerSession)
		wantCode(t, f.allow(c), RateLimited)
		c.Digest = digestB
		for range DefaultRepeatLimit {
			f.refused(c, "cap_exceeded")
		}
		wantCode(t, f.allow(c), LoopDetected)
	}
	f.clock.Advance(time.Minute)
	for _, p := range craftedPrincipals {
		c := call("s1")
		c.Principal = p
		c.Digest = digestB
		wantCode(t, f.allow(c), "")
	}
}
