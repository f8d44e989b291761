package testkit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCA is a throwaway certificate authority made by a test, and one
// server certificate it signed for 127.0.0.1 and localhost, all as PEM
// files in a temporary directory.
type TestCA struct {
	CAFile, CertFile, KeyFile string
	Pool                      *x509.CertPool
}

// NewTestCA makes a CA and a loopback server certificate (ECDSA P-256,
// valid for an hour).
func NewTestCA(t testing.TB) TestCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tollgate test CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := TestCA{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		Pool: x509.NewCertPool()}
	ca.Pool.AddCert(caCert)
	for f, b := range map[string]*pem.Block{ca.CAFile: {Type: "CERTIFICATE", Bytes: caDER},
		ca.CertFile: {Type: "CERTIFICATE", Bytes: der}, ca.KeyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// tlsArgs are redis-server's options to serve TLS with ca's certificate
// (clients need not present one).
func (ca TestCA) tlsArgs() []string {
	return []string{"--tls-cert-file", ca.CertFile, "--tls-key-file", ca.KeyFile,
		"--tls-ca-cert-file", ca.CAFile, "--tls-auth-clients", "no"}
}

// StartTLSRedis runs a redis-server that listens only with TLS, on a free
// loopback port, for this test, with a password. It returns its
// rediss:// URL and the CA that signed its certificate (for --redis-ca).
// It skips the test when redis-server is missing or built without TLS.
func StartTLSRedis(t testing.TB) (string, TestCA) {
	t.Helper()
	ca := NewTestCA(t)
	port := loopbackPort(t)
	_, _ = startNode(t, append([]string{"--port", "0", "--tls-port", port, "--requirepass", "tls-test-pw"}, ca.tlsArgs()...), port, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}, "tls-test-pw")
	return "rediss://:tls-test-pw@127.0.0.1:" + port + "/0", ca
}

// StartCluster3 runs a Redis Cluster of three masters on loopback (slots
// split in three), plain or with TLS on the client and cluster bus ports,
// for this test, and returns its redis(s)+cluster:// URL and, with TLS,
// the CA (for --redis-ca). It skips the test when redis-server is missing
// or, with TLS, built without it.
func StartCluster3(t testing.TB, withTLS bool) (string, TestCA) {
	t.Helper()
	var ca TestCA
	var tc *tls.Config
	if withTLS {
		ca = NewTestCA(t)
		tc = &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
	}
	var ports, buses []string
	var nodes []*redis.Client
	for range 3 {
		port, bus := loopbackPort(t), loopbackPort(t)
		args := []string{"--cluster-enabled", "yes", "--cluster-port", bus, "--cluster-node-timeout", "2000"}
		if withTLS {
			args = append(args, "--port", "0", "--tls-port", port, "--tls-cluster", "yes", "--tls-replication", "yes")
			args = append(args, ca.tlsArgs()...)
		} else {
			args = append(args, "--port", port)
		}
		node, _ := startNode(t, args, port, tc, "")
		nodes = append(nodes, node)
		ports, buses = append(ports, port), append(buses, bus)
	}
	ctx := context.Background()
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, n := range nodes {
		if err := n.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", ranges[i][0], ranges[i][1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(ports); i++ {
		// The bus port is named: it is not the default port+10000.
		if err := nodes[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", ports[i], buses[i]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range nodes {
		for !strings.Contains(n.ClusterInfo(ctx).Val(), "cluster_state:ok") ||
			!strings.Contains(n.ClusterInfo(ctx).Val(), "cluster_known_nodes:3") {
			if time.Now().After(deadline) {
				t.Fatalf("the 3-node cluster did not reach cluster_state:ok: %s", n.ClusterInfo(ctx).Val())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	scheme := "redis+cluster://"
	if withTLS {
		scheme = "rediss+cluster://"
	}
	hosts := make([]string, len(ports))
	for i, p := range ports {
		hosts[i] = "127.0.0.1:" + p
	}
	return scheme + strings.Join(hosts, ","), ca
}

// startNode starts redis-server with args, waits until it answers PING on
// port (over tc when not nil) and returns a client of it and its process
// (to pause it). The process is killed when the test ends.
func startNode(t testing.TB, args []string, port string, tc *tls.Config, password string) (*redis.Client, *os.Process) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	args = append([]string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--logfile", logFile}, args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, TLSConfig: tc, Password: password,
		DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return c, cmd.Process
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			if tc != nil && strings.Contains(strings.ToLower(string(b)), "tls") {
				t.Skipf("redis-server cannot serve TLS here (built without it?): %s", lastLines(string(b), 3))
			}
			t.Fatalf("redis-server %v exited: %s", args, lastLines(string(b), 5))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("redis-server on %s did not answer within 10s (%v): %s", port, err, lastLines(string(b), 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopbackPort is a port free on 127.0.0.1 a moment ago.
func loopbackPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprint(strings.Join(lines, " | "))
}
