package testkit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replicated is a Redis master with one replica (--replicaof), for tests
// of what the master's WAIT answers.
type Replicated struct {
	Master, Replica *redis.Client
	replica         *os.Process
}

// StartReplicated starts a master and one replica of it for this test and
// returns once the replica is in sync (master_link_status:up) and the
// master counts it for WAIT. Both are
// killed when the test ends; a paused replica is resumed first.
func StartReplicated(t testing.TB) *Replicated {
	t.Helper()
	mport, rport := loopbackPort(t), loopbackPort(t)
	master, _ := startNode(t, []string{"--port", mport, "--repl-diskless-sync-delay", "0"}, mport, nil, "")
	replica, proc := startNode(t, []string{"--port", rport, "--replicaof", "127.0.0.1", mport}, rport, nil, "")
	r := &Replicated{Master: master, Replica: replica, replica: proc}
	t.Cleanup(func() { _ = r.Resume() })
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(replica.Info(ctx, "replication").Val(), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync with its master within 10s: %s", replica.Info(ctx, "replication").Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The master counts the replica for WAIT once the replica's first
	// acknowledgement arrived (up to a second after the link is up): a
	// write and WAIT on one connection tell when it does.
	for {
		var wait *redis.Cmd
		_, _ = master.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "testkit:replicated", "1", 0)
			wait = p.Do(ctx, "WAIT", 1, 100)
			return nil
		})
		if n, _ := wait.Int(); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master does not count its replica for WAIT within 10s: %s", master.Info(ctx, "replication").Val())
		}
	}
	if err := master.Del(ctx, "testkit:replicated").Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// Pause freezes the replica (SIGSTOP): it stays connected but acknowledges
// nothing, so the master's WAIT times out.
func (r *Replicated) Pause() error { return r.replica.Signal(syscall.SIGSTOP) }

// Resume continues a paused replica (SIGCONT).
func (r *Replicated) Resume() error { return r.replica.Signal(syscall.SIGCONT) }

// StartClusterReplicated runs a Redis Cluster of two masters (slots
// 0..8191 and 8192..16383) of which only the first has a replica, for
// tests of where a Cluster client sends WAIT. It returns a client of the
// cluster once the replica is in sync and counted by its master.
func StartClusterReplicated(t testing.TB) *redis.ClusterClient {
	t.Helper()
	var ports, buses []string
	var nodes []*redis.Client
	for range 3 {
		port, bus := loopbackPort(t), loopbackPort(t)
		node, _ := startNode(t, []string{"--port", port, "--cluster-enabled", "yes", "--cluster-port", bus,
			"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"}, port, nil, "")
		nodes = append(nodes, node)
		ports, buses = append(ports, port), append(buses, bus)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nodes[0].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 8191).Err())
	must(nodes[1].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 8192, 16383).Err())
	for i := 1; i < 3; i++ {
		must(nodes[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", ports[i], buses[i]).Err())
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(nodes[2].ClusterInfo(ctx).Val(), "cluster_known_nodes:3") {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not meet: %s", nodes[2].ClusterInfo(ctx).Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	id := nodes[0].Do(ctx, "CLUSTER", "MYID").Val()
	for nodes[2].Do(ctx, "CLUSTER", "REPLICATE", id).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the replica cannot replicate the first master: %v", nodes[2].Do(ctx, "CLUSTER", "REPLICATE", id).Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range nodes {
		for !strings.Contains(n.ClusterInfo(ctx).Val(), "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not reach cluster_state:ok: %s", n.ClusterInfo(ctx).Val())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	key := ClusterKeyIn(t, nodes[0], 0, 8191)
	for {
		var wait *redis.Cmd
		_, _ = nodes[0].Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "1", 0)
			wait = p.Do(ctx, "WAIT", 1, 100)
			return nil
		})
		if n, _ := wait.Int(); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first master does not count its replica: %s", nodes[0].Info(ctx, "replication").Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:" + ports[0]}})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// ClusterKeyIn is a key "{N}" whose Cluster slot is within lo..hi.
func ClusterKeyIn(t testing.TB, c redis.Cmdable, lo, hi int64) string {
	t.Helper()
	for i := range 1000 {
		k := fmt.Sprintf("{%d}", i)
		s, err := c.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if s >= lo && s <= hi {
			return k
		}
	}
	t.Fatalf("no key of slots %d..%d", lo, hi)
	return ""
}
