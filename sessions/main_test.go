package sessions

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
	st, err := New(rdb, Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, store: st, clock: clk, rdb: rdb}
}

const (
	alice = "user:alice@example.com"
	bob   = "user:bob@example.com"
	agent = "spiffe://example.org/agent/deployer"
)

// create stores a session of principal, child of parent when given as
// "principal|sid" or a bare sid of the same principal.
func (f *fixture) create(principal, parent string) Session {
	f.t.Helper()
	// Each session gets its own millisecond, so orders by time are total.
	f.clock.Advance(time.Millisecond)
	in := Session{
		Principal: principal,
		Actors:    []string{agent},
		ClientID:  agent,
		Scopes:    []string{"dns:read", "dns:write"},
		Expires:   f.clock.Now().Add(10 * time.Minute),
	}
	if parent != "" {
		if p, sid, ok := splitMember(parent); ok {
			in.ParentPrincipal, in.Parent = p, sid
		} else {
			in.Parent = parent
		}
	}
	s, err := f.store.Create(context.Background(), in)
	if err != nil {
		f.t.Fatalf("create %s under %q: %v", principal, parent, err)
	}
	return s
}

func (f *fixture) check(s Session) error {
	return f.store.Check(context.Background(), s.Principal, s.ID, "jti-"+s.ID)
}

// wantCode fails unless err carries code (nil for success).
func wantCode(t *testing.T, err error, code fault.Code) { t.Helper(); testkit.WantCode(t, err, code) }

// Compile-time pins of what the guard and the exchange need from a Store.
// The interfaces themselves belong to their users (tools/, auth/).
var (
	_ interface {
		Check(ctx context.Context, principal, sid, jti string) error
	} = (*Store)(nil)
	_ interface {
		Create(ctx context.Context, s Session) (Session, error)
		AddToken(ctx context.Context, principal, sid, tokenHash string, exp time.Time) error
	} = (*Store)(nil)
	_ interface {
		Revoke(ctx context.Context, principal, sid, reason string) ([]string, error)
		RevokeJTI(ctx context.Context, principal, sid, jti string, exp time.Time) error
	} = (*Store)(nil)
)
