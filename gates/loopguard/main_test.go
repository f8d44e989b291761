package loopguard

import (
	"context"
	"os"
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

type fixture struct {
	t     *testing.T
	guard *Guard
	clock *clock
	rdb   redis.UniversalClient
}

// newFixture returns a Guard with the default limits on a fresh database of
// the package's real redis-server, with a test clock.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return newFixtureOn(t, rdb, Config{})
}

func newFixtureOn(t *testing.T, rdb redis.UniversalClient, cfg Config) *fixture {
	t.Helper()
	clk := newClock()
	cfg.Now = clk.Now
	g, err := New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, guard: g, clock: clk, rdb: rdb}
}

const (
	alice   = "user:alice@example.com"
	bob     = "user:bob@example.com"
	digestA = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
	digestB = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a"
)

// call is a domain_check call of alice in session sid with digestA.
func call(sid string) Call {
	return Call{Principal: alice, Session: sid, Tool: "domain_check", Digest: digestA}
}

func (f *fixture) allow(c Call) error { return f.guard.Allow(context.Background(), c) }

// allowN makes n calls that must all be allowed.
func (f *fixture) allowN(c Call, n int) {
	f.t.Helper()
	for i := range n {
		if err := f.allow(c); err != nil {
			f.t.Fatalf("call %d of %d in session %s: %v", i+1, n, c.Session, err)
		}
	}
}

func (f *fixture) refused(c Call, code fault.Code) {
	f.t.Helper()
	if err := f.guard.Refused(context.Background(), c, code); err != nil {
		f.t.Fatalf("refused: %v", err)
	}
}

// wantCode fails unless err carries code (nil for success).
func wantCode(t *testing.T, err error, code fault.Code) { t.Helper(); testkit.WantCode(t, err, code) }

// countHook counts round trips (testkit.CountHook).
type countHook = testkit.CountHook

// The guard's view of a Guard. The interface belongs to its user (tools/).
var _ interface {
	Allow(ctx context.Context, call Call) error
	Refused(ctx context.Context, call Call, code fault.Code) error
} = (*Guard)(nil)
