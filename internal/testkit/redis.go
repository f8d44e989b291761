// Package testkit holds helpers shared by tollgate's tests and its
// benchmark harness (bench/): a real redis-server per test package, and MCP
// clients connected in-process, over stdio and over Streamable HTTP. The
// tollgate binary never imports it.
package testkit

import (
	"bufio"
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

// EnvRedisURL names a Redis the tests may use instead of starting their own.
const EnvRedisURL = "TOLLGATE_TEST_REDIS_URL"

// RedisServer is a redis-server process started for one test package.
type RedisServer struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
	dir  string
	db   int
	mu   sync.Mutex
}

var (
	shared     *RedisServer
	sharedErr  error
	sharedOnce sync.Once
	dbCounter  int
	dbMu       sync.Mutex
)

// StartRedis starts a redis-server on a free loopback port in a temporary
// directory. Call Stop when done. It never touches a Redis it did not start.
func StartRedis() (*RedisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("testkit: redis-server not found on PATH (make test installs it with apt-get install -y redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "tollgate-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin,
			"--bind", "127.0.0.1", "--port", fmt.Sprint(port),
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--protected-mode", "yes", "--databases", "64",
			"--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testkit: start redis-server: %w", err)
		}
		if err := waitRedis(addr, 5*time.Second); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			lastErr = err
			continue
		}
		return &RedisServer{URL: "redis://" + addr, Addr: addr, cmd: cmd, dir: dir}, nil
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("testkit: redis-server did not come up: %w", lastErr)
}

// Pid is the server's process id (for memory readings).
func (r *RedisServer) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Stop kills the server and removes its directory.
func (r *RedisServer) Stop() {
	if r == nil || r.cmd == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
	r.cmd = nil
	os.RemoveAll(r.dir)
}

// Kill stops the server so that tests can observe Redis being unavailable;
// Restart brings a new one up on the same port.
func (r *RedisServer) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, like a Redis that hangs. Resume (SIGCONT) brings it back with
// its data.
func (r *RedisServer) Pause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues a paused server.
func (r *RedisServer) Resume() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd.Process.Signal(syscall.SIGCONT)
}

// Restart starts redis-server again on the same address after Kill.
func (r *RedisServer) Restart() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port,
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--databases", "64",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	return waitRedis(r.Addr, 5*time.Second)
}

// MainRedis is for TestMain: it starts one redis-server for the package (or
// uses TOLLGATE_TEST_REDIS_URL), runs the tests and stops it.
//
//	func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }
func MainRedis(m *testing.M) int {
	if u := os.Getenv(EnvRedisURL); u != "" {
		shared = &RedisServer{URL: u}
		return m.Run()
	}
	srv, err := StartRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared = srv
	code := m.Run()
	srv.Stop()
	return code
}

// Redis returns a client on a fresh logical database of the package's
// redis-server, flushed before use and closed when the test ends. Tests that
// run in parallel get different databases, so they never see each other.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	return redis.NewClient(RedisOptions(t))
}

// RedisOptions returns options for a fresh logical database (see Redis).
func RedisOptions(t testing.TB) *redis.Options {
	t.Helper()
	if shared == nil {
		t.Fatal("testkit: no redis-server; call testkit.MainRedis from TestMain")
	}
	opt, err := redis.ParseURL(shared.URL)
	if err != nil {
		t.Fatalf("testkit: bad redis url %q: %v", shared.URL, err)
	}
	dbMu.Lock()
	dbCounter++
	opt.DB = 1 + (dbCounter % 63)
	dbMu.Unlock()
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("testkit: flush redis db %d: %v", opt.DB, err)
	}
	_ = c.Close()
	return opt
}

// RedisURL returns a redis:// URL naming a fresh logical database, for code
// (and child processes) that take --redis-url.
func RedisURL(t testing.TB) string {
	opt := RedisOptions(t)
	return fmt.Sprintf("redis://%s/%d", opt.Addr, opt.DB)
}

// SharedRedis returns the package's redis-server (nil when an external URL is used).
func SharedRedis() *RedisServer { return shared }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitRedis(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis at %s not answering PING after %s", addr, within)
}
