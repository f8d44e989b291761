package human

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

func newClock() *clock { return &clock{t: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)} }

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
	t         *testing.T
	clock     *clock
	rdb       redis.UniversalClient
	sealer    *Sealer
	approvals *Approvals
	consents  *Consents
}

// newFixture returns a Sealer, Approvals and Consents on a fresh database
// of the package's real redis-server, with one test clock.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return newFixtureOn(t, rdb)
}

func newFixtureOn(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), rdb: rdb}
	var err error
	if f.sealer, err = NewSealer(context.Background(), rdb, SealerConfig{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.approvals, err = NewApprovals(rdb, ApprovalsConfig{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.consents, err = NewConsents(rdb, ConsentsConfig{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return f
}

// replica returns a second Sealer on its own connection pool to the same
// Redis database and clock: another tollgate process.
func (f *fixture) replica(opt *redis.Options) *Sealer {
	f.t.Helper()
	c := redis.NewClient(opt)
	f.t.Cleanup(func() { _ = c.Close() })
	s, err := NewSealer(context.Background(), c, SealerConfig{Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

const (
	alice = "user:alice@example.com"
	bob   = "user:bob@example.com"
)

// call is the binding of alice's deploy_promote call in session s1.
var call = Binding{Principal: alice, Session: "s1", Tool: "deploy_promote",
	ArgsDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}

var productionGate = Gate{ID: "approve", Kind: Production,
	Summary: "Promote preview pv-1 of script shop to production (4.1 KiB, sha256 3a7b…)"}

// seal seals a production gate for b.
func (f *fixture) seal(b Binding) string {
	f.t.Helper()
	tok, err := f.sealer.Seal(context.Background(), State{Binding: b, Gates: []Gate{productionGate}})
	if err != nil {
		f.t.Fatalf("seal: %v", err)
	}
	return tok
}

// wantCode fails unless err carries code (nil for success).
func wantCode(t testing.TB, err error, code fault.Code) { t.Helper(); testkit.WantCode(t, err, code) }

// countHook counts round trips (testkit.CountHook).
type countHook = testkit.CountHook

// Compile-time pins of what the gate wiring needs. The interfaces
// themselves belong to their users (tools/, cmd/).
var (
	_ interface {
		Seal(ctx context.Context, st State) (string, error)
		Open(ctx context.Context, token string, want Binding) (State, error)
	} = (*Sealer)(nil)
	_ interface {
		Create(ctx context.Context, a Approval) (Approval, error)
		Consume(ctx context.Context, id string, want Binding) (Approval, error)
	} = (*Approvals)(nil)
	_ interface {
		Get(ctx context.Context, id string) (Approval, error)
		List(ctx context.Context, principal string, pendingOnly bool) ([]Approval, error)
		Decide(ctx context.Context, id, principal string, approve bool, by string) (Approval, error)
	} = (*Approvals)(nil)
	_ interface {
		Remember(ctx context.Context, principal, provider string, kind Kind, version string) error
		Has(ctx context.Context, principal, provider string, kind Kind, version string) (bool, error)
	} = (*Consents)(nil)
)
