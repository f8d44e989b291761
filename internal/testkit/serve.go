package testkit

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Process is a `tollgate serve` child process.
type Process struct {
	URL    string // base URL, e.g. http://127.0.0.1:PORT
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

// Stderr returns what the process printed on stderr so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct{ p *Process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// Serve starts `bin serve --addr 127.0.0.1:<free port> args...` and waits
// until /healthz answers. The process is killed when the test ends.
func Serve(t testing.TB, bin string, env []string, args ...string) *Process {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p := &Process{URL: "http://" + addr}
		p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
		p.cmd.Env = append(os.Environ(), env...)
		p.cmd.Stderr = lockedWriter{p}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("testkit: start tollgate serve: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(exited) }()
		if err := waitHealthy(p.URL, exited, 20*time.Second); err != nil {
			_ = p.cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%v\nstderr:\n%s", err, p.Stderr())
			continue
		}
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-exited
		})
		return p
	}
	t.Fatalf("testkit: tollgate serve did not become healthy: %v", lastErr)
	return nil
}

func waitHealthy(base string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("tollgate serve exited early")
		default:
		}
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no healthy answer from %s/healthz within %s", base, within)
}
