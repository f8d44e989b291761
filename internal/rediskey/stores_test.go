package rediskey_test

import (
	"context"
	"os"
	"path"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/internal/mcpsession"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/rediskey"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// A principal whose braces must be escaped in every tag.
const alice = "user:alice{x}@example.com"

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// use is one store exercised on an empty Redis until it has written a key
// of every family it owns.
type use struct {
	store string // "<package>.<type>", as the registry names the owner
	run   func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock)
}

// Each store, run alone on an empty Redis, leaves only keys of its own
// families; and every family of the registry is written by its store. So
// the registry is the whole key space, and no two stores share a family,
// whatever Config.Prefix-built keys and Lua scripts the stores use.
func TestStoresWriteOnlyTheirFamilies(t *testing.T) {
	seen := map[string]bool{}
	for _, u := range uses() {
		t.Run(u.store, func(t *testing.T) {
			rdb := testkit.Redis(t)
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			u.run(t, ctx, rdb, &clock{t: time.Now()})
			keys, err := allKeys(ctx, rdb)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) == 0 {
				t.Fatal("the store wrote nothing: the use is broken")
			}
			for _, k := range keys {
				f, ok := rediskey.Lookup(k)
				switch {
				case !ok:
					t.Errorf("%s wrote %q, which is in no registered family", u.store, k)
				case path.Base(f.Owner)+"."+f.Store != u.store:
					t.Errorf("%s wrote %q, of family %s, which %s.%s owns", u.store, k, f.Name, f.Owner, f.Store)
				default:
					seen[f.Name] = true
				}
			}
		})
	}
	for _, f := range rediskey.Families() {
		if !seen[f.Name] {
			t.Errorf("family %s (%s) was written by no store: its owner %s.%s never uses it, or its use here is missing",
				f.Name, f.Pattern(), f.Owner, f.Store)
		}
	}
}

func allKeys(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	var out []string
	it := rdb.Scan(ctx, 0, "", 1000).Iterator()
	for it.Next(ctx) {
		out = append(out, it.Val())
	}
	sort.Strings(out)
	return out, it.Err()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func uses() []use {
	const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	return []use{
		{"sessions.Store", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			st, err := sessions.New(rdb, sessions.Config{Now: clk.now})
			must(t, err)
			in := sessions.Session{Principal: alice, Actors: []string{"agent"}, ClientID: "agent",
				Scopes: []string{"dns:read"}, Expires: clk.now().Add(10 * time.Minute)}
			parent, err := st.Create(ctx, in)
			must(t, err)
			in.Parent = parent.ID
			_, err = st.Create(ctx, in)
			must(t, err)
			must(t, st.AddToken(ctx, alice, parent.ID, sessions.HashToken("token"), parent.Expires))
			must(t, st.RevokeJTI(ctx, alice, parent.ID, "jti-1", parent.Expires))
		}},
		{"sessions.Audit", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			a, err := sessions.NewAudit(rdb, sessions.AuditConfig{Now: clk.now})
			must(t, err)
			_, err = a.Append(ctx, sessions.Entry{Event: "revoke", Principal: alice, Session: "s1"})
			must(t, err)
		}},
		{"human.Sealer", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			s, err := human.NewSealer(ctx, rdb, human.SealerConfig{Now: clk.now})
			must(t, err)
			b := human.Binding{Principal: alice, Session: "s1", Tool: "deploy_promote", ArgsDigest: digest}
			tok, err := s.Seal(ctx, human.State{Binding: b, Gates: []human.Gate{{ID: "approve", Kind: human.Production, Summary: "Promote pv-1"}}})
			must(t, err)
			_, err = s.Open(ctx, tok, b)
			must(t, err)
		}},
		{"human.Approvals", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			a, err := human.NewApprovals(rdb, human.ApprovalsConfig{Now: clk.now})
			must(t, err)
			_, err = a.Create(ctx, human.Approval{Kind: human.Purchase, Summary: "Register example.dev",
				Binding: human.Binding{Principal: alice, Session: "s1", Tool: "domain_register", ArgsDigest: digest}})
			must(t, err)
		}},
		{"human.Consents", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			c, err := human.NewConsents(rdb, human.ConsentsConfig{Now: clk.now})
			must(t, err)
			must(t, c.Remember(ctx, alice, "stripe", human.Terms, "2026-01"))
		}},
		{"spend.Ledger", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			l, err := spend.New(rdb, spend.Config{Now: clk.now, HoldTTL: time.Minute})
			must(t, err)
			h, err := l.Hold(ctx, spend.HoldRequest{Principal: alice, Provider: "cloudflare", Amount: money.USD(1000),
				Budgets: []spend.Budget{{Session: "s1", Max: money.USD(5000)}}, Tool: "domain_register"})
			must(t, err)
			must(t, l.Commit(ctx, alice, h.ID, money.USD(1000)))
			_, err = l.Hold(ctx, spend.HoldRequest{Principal: alice, Provider: "cloudflare", Amount: money.USD(500)})
			must(t, err)
			clk.advance(2 * time.Minute) // the second hold expires, unsettled: stale
			_, err = l.ReapExpired(ctx, alice)
			must(t, err)
			_, err = l.Hold(ctx, spend.HoldRequest{Principal: alice, Provider: "cloudflare", Amount: money.USD(100)})
			must(t, err)
			_, err = l.SetCap(ctx, alice, "stripe", money.USD(20000))
			must(t, err)
			sub, err := l.Hold(ctx, spend.HoldRequest{Principal: alice, Provider: "stripe", Amount: money.USD(900), Recurring: money.USD(900)})
			must(t, err)
			must(t, l.Commit(ctx, alice, sub.ID, money.USD(900)))
			must(t, l.BindSubscription(ctx, spend.Subscription{ID: "sub_1", Principal: alice, Provider: "stripe", Commitment: sub.ID}, sub.Month, "in_1", money.USD(900)))
			_, err = l.SeenWebhookEvent(ctx, "evt_1")
			must(t, err)
		}},
		{"loopguard.Guard", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			g, err := loopguard.New(rdb, loopguard.Config{Now: clk.now})
			must(t, err)
			call := loopguard.Call{Principal: alice, Session: "s1", Tool: "dns_upsert", Digest: digest}
			must(t, g.Allow(ctx, call))
			for range 3 {
				must(t, g.Refused(ctx, call, fault.InvalidArgument))
			}
		}},
		{"idempotency.Store", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			s, err := idempotency.New(rdb, idempotency.Config{Now: clk.now, Secret: make([]byte, 32)})
			must(t, err)
			_, err = s.Begin(ctx, alice, "domain_register", "key-1", digest)
			must(t, err)
		}},
		{"auth.KeyRing", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			k, err := auth.NewKeyRing(auth.KeyRingConfig{Namespace: auth.NamespaceSTS, Redis: rdb, Clock: clk.now})
			must(t, err)
			must(t, k.Publish(ctx))
		}},
		{"links.Store", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			s, err := links.New(rdb, make([]byte, 32))
			must(t, err)
			must(t, s.Set(ctx, alice, map[string]string{"stripe_customer": "cus_1"}))
			must(t, s.AddSecret(ctx, alice, "cf-token", "s3cret"))
		}},
		{"mcpsession.Owners", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			o, err := mcpsession.New(rdb)
			must(t, err)
			must(t, o.Record(ctx, "mcp-1", alice))
			r, ok, err := o.Reserve(ctx, alice, 10, time.Minute)
			must(t, err)
			if !ok {
				t.Fatal("reservation refused")
			}
			must(t, o.Opened(ctx, r, "mcp-2", time.Minute))
		}},
		{"flowstate.Store", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			s, err := flowstate.New(rdb, time.Minute)
			must(t, err)
			must(t, s.Save(ctx, "ap1", flowstate.Record{Principal: alice, Kind: "billing"}))
		}},
		{"sharedsecret.Store", func(t *testing.T, ctx context.Context, rdb redis.UniversalClient, clk *clock) {
			s, err := sharedsecret.New(rdb)
			must(t, err)
			for _, n := range []sharedsecret.Name{sharedsecret.Idempotency, sharedsecret.Credentials, sharedsecret.Approvals} {
				_, err := s.Get(ctx, n)
				must(t, err)
			}
		}},
	}
}
