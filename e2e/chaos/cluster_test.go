package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisNode is one redis-server process of the cluster, with its own
// directory (nodes.conf, the append-only file) kept across restarts.
type redisNode struct {
	Port int
	Addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs redis-server on the node's port with the persistence tollgate
// needs (docs/durability.md): appendonly yes, appendfsync always.
func (n *redisNode) start(extra ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	args := []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(n.Port), "--dir", n.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--logfile", filepath.Join(n.dir, "redis.log")}
	cmd := exec.Command("redis-server", append(args, extra...)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		_ = c.Close()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start; see %s", n.Addr, filepath.Join(n.dir, "redis.log"))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis-server on %s did not answer PING within 10s", n.Addr)
}

func (n *redisNode) signal(s syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return fmt.Errorf("redis-server on %s is not running", n.Addr)
	}
	return n.cmd.Process.Signal(s)
}

// kill9 kills the node with SIGKILL and waits for it to be gone.
func (n *redisNode) kill9() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-done
}

func (n *redisNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// cluster is a Redis Cluster of redis-server processes on loopback.
type cluster struct {
	Nodes []*redisNode
}

// startCluster starts masters*2 nodes and joins them with
// `redis-cli --cluster create … --cluster-replicas 1`.
func startCluster(t testing.TB, masters int) *cluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not on PATH (apt-get install redis-server)", bin)
		}
	}
	c := &cluster{}
	var addrs []string
	for range masters * 2 {
		port := freePort(t)
		dir, err := os.MkdirTemp("", "tollgate-chaos-redis-")
		if err != nil {
			t.Fatal(err)
		}
		n := &redisNode{Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
		if err := n.start(c.clusterArgs(n)...); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr)
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.kill9()
			_ = os.RemoveAll(n.dir)
		}
	})
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if _, err := c.waitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// clusterArgs: a node timeout long enough that a 2 s SIGSTOP is not a
// failure, short enough that a killed master's replica takes over in a few
// seconds.
func (c *cluster) clusterArgs(n *redisNode) []string {
	return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", "3000"}
}

func (c *cluster) restart(n *redisNode) error { return n.start(c.clusterArgs(n)...) }

// URL is the --redis-url of the cluster for tollgate.
func (c *cluster) URL() string {
	var hosts []string
	for _, n := range c.Nodes {
		hosts = append(hosts, n.Addr)
	}
	return "redis+cluster://" + strings.Join(hosts, ",")
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	Addr   string
	Master bool
	Failed bool
	Slots  bool
}

func (c *cluster) topology() ([]clusterNode, error) {
	var lastErr error
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
		out, err := cl.ClusterNodes(context.Background()).Result()
		_ = cl.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var nodes []clusterNode
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			nodes = append(nodes, clusterNode{Addr: addr, Master: strings.Contains(f[2], "master"),
				Failed: strings.Contains(f[2], "fail"), Slots: len(f) > 8})
		}
		return nodes, nil
	}
	return nil, fmt.Errorf("no cluster node answers CLUSTER NODES: %v", lastErr)
}

// masters returns the running nodes that serve slots as masters.
func (c *cluster) masters() []*redisNode {
	nodes, err := c.topology()
	if err != nil {
		return nil
	}
	var out []*redisNode
	for _, cn := range nodes {
		if !cn.Master || cn.Failed || !cn.Slots {
			continue
		}
		for _, n := range c.Nodes {
			if n.Addr == cn.Addr && n.running() {
				out = append(out, n)
			}
		}
	}
	return out
}

// waitHealthy waits until every running node says cluster_state:ok and
// every slot range has a master that is not failed, and returns when.
func (c *cluster) waitHealthy(within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c.healthy() {
			return time.Now(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("the Redis Cluster did not become healthy within %s", within)
}

func (c *cluster) healthy() bool {
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
		info, err := cl.ClusterInfo(context.Background()).Result()
		_ = cl.Close()
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false
		}
	}
	return true
}

// waitFailover waits until the running nodes see dead as failed and no
// longer a master of any slot, and the cluster is healthy again.
func (c *cluster) waitFailover(dead *redisNode, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		nodes, err := c.topology()
		if err == nil {
			promoted := true
			for _, n := range nodes {
				if n.Addr == dead.Addr && (n.Slots || !n.Failed) {
					promoted = false
				}
			}
			if promoted && c.healthy() {
				return time.Now(), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no replica of %s took over within %s", dead.Addr, within)
}
