package spend

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	t      *testing.T
	ledger *Ledger
	clock  *clock
	rdb    redis.UniversalClient
}

// newFixture returns a Ledger on a fresh database of the package's real
// redis-server, with a test clock. cfg.Now is set to the test clock.
func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return newFixtureOn(t, rdb, cfg)
}

func newFixtureOn(t *testing.T, rdb redis.UniversalClient, cfg Config) *fixture {
	t.Helper()
	clk := newClock()
	cfg.Now = clk.Now
	l, err := New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ledger: l, clock: clk, rdb: rdb}
}

const (
	alice = "user:alice@example.com"
	bob   = "user:bob@example.com"
)

func usd(c int64) money.Money { return money.USD(c) }

func eur(c int64) money.Money { return money.Money{Minor: c, Currency: "eur"} }

// hold holds amount at stripe for alice under id.
func (f *fixture) hold(id string, amount money.Money, budgets ...Budget) (Hold, error) {
	return f.ledger.Hold(context.Background(), HoldRequest{HoldID: id, Principal: alice, Provider: Stripe,
		Amount: amount, Budgets: budgets, Tool: "domain_register", Description: "example.com"})
}

func (f *fixture) mustHold(id string, amount money.Money, budgets ...Budget) Hold {
	f.t.Helper()
	h, err := f.hold(id, amount, budgets...)
	if err != nil {
		f.t.Fatalf("hold %s of %s: %v", id, amount, err)
	}
	return h
}

// status returns alice's stripe status.
func (f *fixture) status() Status {
	f.t.Helper()
	return f.statusOf(alice, Stripe)
}

func (f *fixture) statusOf(principal, provider string) Status {
	f.t.Helper()
	s, err := f.ledger.Status(context.Background(), principal, provider)
	if err != nil {
		f.t.Fatalf("status: %v", err)
	}
	return s
}

// wantMoney fails unless alice's stripe spent and held are as given (cents).
func (f *fixture) wantMoney(spent, held int64) {
	f.t.Helper()
	s := f.status()
	if s.Spent != usd(spent) || s.Held != usd(held) {
		f.t.Fatalf("spent %s held %s, want %s and %s", s.Spent, s.Held, usd(spent), usd(held))
	}
	if s.Remaining.Minor != max(0, s.Cap.Minor-spent-held) {
		f.t.Fatalf("remaining %s with cap %s, spent %s, held %s", s.Remaining, s.Cap, s.Spent, s.Held)
	}
}

// budgetOf returns spent and held under a session's stripe budget.
func (f *fixture) budgetOf(sid string, mx money.Money) (spent, held, left money.Money) {
	f.t.Helper()
	spent, held, left, err := f.ledger.BudgetStatus(context.Background(), alice, sid, Stripe, mx)
	if err != nil {
		f.t.Fatalf("budget status %s: %v", sid, err)
	}
	return spent, held, left
}

// wantCode fails unless err carries code (nil for success).
func wantCode(t testing.TB, err error, code fault.Code) { t.Helper(); testkit.WantCode(t, err, code) }

// countHook counts round trips (testkit.CountHook).
type countHook = testkit.CountHook

// Compile-time pins of what the tools need from a Ledger. The interfaces
// themselves belong to their users (tools/, cmd/).
var (
	_ interface {
		Hold(ctx context.Context, req HoldRequest) (Hold, error)
		Commit(ctx context.Context, principal, holdID string, actual money.Money) error
		Release(ctx context.Context, principal, holdID, reason string) error
	} = (*Ledger)(nil)
	_ interface {
		Status(ctx context.Context, principal, provider string) (Status, error)
		BudgetStatus(ctx context.Context, principal, session, provider string, max money.Money) (spent, held, remaining money.Money, err error)
	} = (*Ledger)(nil)
	_ interface {
		Holds(ctx context.Context, f HoldFilter) ([]Hold, error)
		ReapExpired(ctx context.Context, principal string) (int, error)
		Reconcile(ctx context.Context, principal, holdID string, actual money.Money, note string) error
	} = (*Ledger)(nil)
)
