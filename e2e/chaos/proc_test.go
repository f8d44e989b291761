package chaos

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// replica is a `tollgate serve --sandbox` process this suite may kill.
type replica struct {
	Name string
	URL  string
	addr string
	bin  string
	env  []string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
}

type lockedBuf struct{ r *replica }

func (w lockedBuf) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.log.Write(b)
}

func (r *replica) stderr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// newReplica starts a replica on a fixed free port (kept across restarts,
// so clients find it again) and waits for /healthz.
func newReplica(t testing.TB, name, bin string, env []string, args ...string) *replica {
	t.Helper()
	port := freePort(t)
	r := &replica{Name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), bin: bin, env: env, args: args}
	r.URL = "http://" + r.addr
	if err := r.start(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, r.stderr())
	}
	t.Cleanup(r.kill9)
	return r
}

func (r *replica) start() error {
	cmd := exec.Command(r.bin, append([]string{"serve", "--addr", r.addr}, r.args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stderr = lockedBuf{r}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	return r.waitHealthy(30 * time.Second)
}

// waitHealthy polls /healthz (which pings Redis) until it answers 200.
func (r *replica) waitHealthy(within time.Duration) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s exited", r.Name)
		default:
		}
		resp, err := c.Get(r.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("%s: no healthy answer within %s", r.Name, within)
}

// kill9 kills the replica with SIGKILL, as a crash would.
func (r *replica) kill9() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (r *replica) alive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}
