package stripe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// stripeMockModule is the stripe-mock release SPEC §11 names.
const stripeMockModule = "github.com/stripe/stripe-mock@v0.203.0"

// mockKey is any test key: stripe-mock checks the shape of a key, not its value.
const mockKey = "sk_test_123"

// TestAdapterAgainstStripeMock sends the adapter's requests to stripe-mock,
// Stripe's own mock server, which validates every request against Stripe's
// OpenAPI spec: an unknown or malformed parameter comes back as 400. It
// runs each adapter method against it, then replays every API request the
// adapter made to the fake in a full flow (ids and all). The fake is only
// as right as its author; stripe-mock is Stripe's.
func TestAdapterAgainstStripeMock(t *testing.T) {
	base := startStripeMock(t, stripeMockBinary(t))

	// stripe-mock validates at all: a misspelt parameter is 400.
	res := rawRequest(t, http.MethodPost, base+"/v1/customers", "emial=a%40example.com", "")
	if res.status != http.StatusBadRequest {
		t.Fatalf("stripe-mock accepted an unknown parameter (HTTP %d): validation is off, the test proves nothing", res.status)
	}

	t.Run("each adapter method", func(t *testing.T) {
		c, err := NewClient(Config{BaseURL: base, SecretKey: mockKey, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cus, err := c.FindOrCreateCustomer(ctx, "ada@example.com", "user:ada", "mock-cus-user:ada")
		noValidationError(t, "FindOrCreateCustomer", err)
		co, err := c.CreateSetupCheckout(ctx, cus.ID, "https://tollgate.example/billing/done?s={CHECKOUT_SESSION_ID}", "https://tollgate.example/billing/cancel", "mock-co-1")
		noValidationError(t, "CreateSetupCheckout", err)
		_, _, err = c.CheckoutResult(ctx, co.ID)
		noValidationError(t, "CheckoutResult", err)
		pms, err := c.PaymentMethods(ctx, cus.ID)
		noValidationError(t, "PaymentMethods", err)
		price, err := c.PriceForPlan(ctx, "plan.starter")
		noValidationError(t, "PriceForPlan", err)
		pm := "pm_card_visa"
		if len(pms) > 0 {
			pm = pms[0]
		}
		_, err = c.StartSubscription(ctx, cus.ID, price.ID, pm, "mock-sub-1", nil)
		noValidationError(t, "StartSubscription", err)
	})

	t.Run("replay of the adapter's requests to the fake", func(t *testing.T) {
		f, c := setup(t)
		ctx := context.Background()
		cus, err := c.FindOrCreateCustomer(ctx, "ada@example.com", "user:ada", "cus-user:ada")
		if err != nil {
			t.Fatal(err)
		}
		co, err := c.CreateSetupCheckout(ctx, cus.ID, "https://tollgate.example/billing/done", "https://tollgate.example/billing/cancel", "co-1")
		if err != nil {
			t.Fatal(err)
		}
		pm, err := f.CompleteCheckout(co.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.CheckoutResult(ctx, co.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PaymentMethods(ctx, cus.ID); err != nil {
			t.Fatal(err)
		}
		price, err := c.PriceForPlan(ctx, "plan.team")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.StartSubscription(ctx, cus.ID, price.ID, pm, "sub-1", nil); err != nil {
			t.Fatal(err)
		}
		reqs := apiRequests(f)
		if len(reqs) != 7 {
			t.Fatalf("%d requests to replay, want 7", len(reqs))
		}
		for i, r := range reqs {
			u := base + r.Path
			if r.Query != "" {
				u += "?" + r.Query
			}
			// A fresh key: the same key on another stripe-mock endpoint is not the point here.
			got := rawRequest(t, r.Method, u, string(r.Body), fmt.Sprintf("replay-%d-%s", i, r.IdempotencyKey))
			if got.status >= 400 {
				t.Errorf("stripe-mock refused the adapter's %s %s (HTTP %d): %s", r.Method, r.Path, got.status, got.body)
			}
		}
	})
}

func noValidationError(t *testing.T, method string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ce *CallError
	if errors.As(err, &ce) && ce.HTTPStatus >= 400 && ce.HTTPStatus < 500 {
		t.Fatalf("%s: stripe-mock refused the request (HTTP %d, %s): %s", method, ce.HTTPStatus, ce.StripeCode, ce.Message)
	}
	t.Fatalf("%s against stripe-mock: %s (%v)", method, fault.PublicOf(err), err)
}

type rawAnswer struct {
	status int
	body   string
}

func rawRequest(t *testing.T, method, u, body, idemKey string) rawAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+mockKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if idemKey != "" && method == http.MethodPost {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return rawAnswer{status: res.StatusCode, body: string(b)}
}

var installOnce sync.Once

// stripeMockBinary finds stripe-mock on PATH or in GOBIN / GOPATH/bin and,
// when it is in neither, installs it once with go install. The test is
// skipped, saying why, only when that fails (no network, no module proxy).
func stripeMockBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("stripe-mock is not installed and the go command is not on PATH to install it (%s)", stripeMockModule)
	}
	bin := filepath.Join(installDir(t, goBin), "stripe-mock")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	var out []byte
	installOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "install", stripeMockModule)
		cmd.Dir = t.TempDir() // outside this module: a tool install, not a dependency
		cmd.Env = append(withoutModFlags(os.Environ()), "GOFLAGS=")
		out, err = cmd.CombinedOutput()
	})
	if _, serr := os.Stat(bin); serr != nil {
		t.Skipf("stripe-mock is not installed and `go install %s` failed (%v); the adapter's requests were not checked against Stripe's OpenAPI. Output: %s",
			stripeMockModule, err, tail(out, 800))
	}
	return bin
}

func installDir(t *testing.T, goBin string) string {
	t.Helper()
	out, err := exec.Command(goBin, "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		t.Skipf("stripe-mock is not installed and `go env` failed: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0])
	}
	if len(lines) > 1 {
		if first := filepath.SplitList(strings.TrimSpace(lines[1])); len(first) > 0 && first[0] != "" {
			return filepath.Join(first[0], "bin")
		}
	}
	t.Skip("stripe-mock is not installed and neither GOBIN nor GOPATH is set")
	return ""
}

// withoutModFlags drops GOFLAGS, whose -mod or -modfile would make go
// install of a versioned tool fail.
func withoutModFlags(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "GOFLAGS=") {
			out = append(out, e)
		}
	}
	return out
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// lockedBuffer collects the mock's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startStripeMock runs stripe-mock with both listeners on 127.0.0.1 (given
// only one address it binds the other on every interface) and returns its
// HTTP base URL once it answers.
func startStripeMock(t *testing.T, bin string) string {
	t.Helper()
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
		log := &lockedBuffer{}
		cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting stripe-mock: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		base := "http://" + httpAddr
		if waitReady(base, exited) {
			t.Cleanup(stop)
			return base
		}
		stop()
		lastLog = log.String()
	}
	t.Fatalf("stripe-mock did not start (a port taken?):\n%s", lastLog)
	return ""
}

func waitReady(base string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/prices", nil)
		req.Header.Set("Authorization", "Bearer "+mockKey)
		if res, err := c.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
