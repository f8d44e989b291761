package idempotency

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// clock is a test clock that only moves when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testSecret = []byte(strings.Repeat("s", MinSecret))

type fixture struct {
	t     *testing.T
	store *Store
	clock *clock
	rdb   redis.UniversalClient
}

// newFixture returns a Store on a fresh database of the package's real
// redis-server, with a test clock.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return newFixtureOn(t, rdb)
}

func newFixtureOn(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	clk := newClock()
	st, err := New(rdb, Config{Now: clk.Now, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, store: st, clock: clk, rdb: rdb}
}

const (
	alice = "user:alice@example.com"
	bob   = "user:bob@example.com"
	tool  = "domain_register"
)

// digest is the digest of args, which must canonicalise.
func digest(t testing.TB, args map[string]any) string {
	t.Helper()
	d, err := Digest(args)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) begin(principal, key, digest string) (Outcome, error) {
	return f.store.Begin(context.Background(), principal, tool, key, digest)
}

// started begins a call that must start, and returns its outcome.
func (f *fixture) started(principal, key, digest string) Outcome {
	f.t.Helper()
	out, err := f.begin(principal, key, digest)
	if err != nil {
		f.t.Fatalf("begin %q: %v", key, err)
	}
	if out.State != Started || !validFence(out.Fence) {
		f.t.Fatalf("begin %q: %+v, want Started with a fence", key, out)
	}
	return out
}

func (f *fixture) complete(principal, key, fence string, result []byte) error {
	return f.store.Complete(context.Background(), principal, tool, key, fence, result)
}

// wantCode fails unless err carries code (nil for success).
func wantCode(t *testing.T, err error, code fault.Code) { t.Helper(); testkit.WantCode(t, err, code) }

// countHook counts round trips (testkit.CountHook).
type countHook = testkit.CountHook

// The guard's view of a Store. The interface belongs to its user (tools/).
var _ interface {
	Begin(ctx context.Context, principal, tool, key, digest string) (Outcome, error)
	Complete(ctx context.Context, principal, tool, key, fence string, result []byte) error
	Abort(ctx context.Context, principal, tool, key, fence string) error
	UpstreamKey(ourKey, provider string) string
} = (*Store)(nil)
