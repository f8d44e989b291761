package spend

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestReplayedHoldIDHoldsOnce(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// before runs after the first hold of 10.00 under "h1".
		before func(f *fixture)
		replay HoldRequest
		code   fault.Code
		state  State // of the hold returned by the replay ("" when none)
		// spent and held afterwards, in cents
		spent, held int64
	}{
		{"same request returns the open hold", nil,
			HoldRequest{Amount: usd(1000)}, "", StateHeld, 0, 1000},
		{"same request with another tool and description is still a replay", nil,
			HoldRequest{Amount: usd(1000), Tool: "other", Description: "other"}, "", StateHeld, 0, 1000},
		{"another amount conflicts", nil,
			HoldRequest{Amount: usd(1001)}, HoldConflict, "", 0, 1000},
		{"another provider conflicts", nil,
			HoldRequest{Amount: usd(1000), Provider: Cloudflare}, HoldConflict, "", 0, 1000},
		{"another budget chain conflicts", nil,
			HoldRequest{Amount: usd(1000), Budgets: []Budget{{"s1", usd(5000)}}}, HoldConflict, "", 0, 1000},
		{"after a commit the hold is returned, but may not be used again",
			func(f *fixture) { wantCode(f.t, f.ledger.Commit(ctx, alice, "h1", usd(900)), "") },
			HoldRequest{Amount: usd(1000)}, HoldConflict, StateCommitted, 900, 0},
		{"after a release likewise",
			func(f *fixture) { wantCode(f.t, f.ledger.Release(ctx, alice, "h1", ""), "") },
			HoldRequest{Amount: usd(1000)}, HoldConflict, StateReleased, 0, 0},
		{"after expiry it is expired, not renewed",
			func(f *fixture) { f.clock.Advance(DefaultHoldTTL) },
			HoldRequest{Amount: usd(1000)}, HoldExpired, StateExpired, 0, 0},
		{"the same id under another principal is another hold", nil,
			HoldRequest{Amount: usd(1000), Principal: bob}, "", StateHeld, 0, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			first := f.mustHold("h1", usd(1000))
			if tt.before != nil {
				tt.before(f)
			}
			req := tt.replay
			req.HoldID = "h1"
			if req.Principal == "" {
				req.Principal = alice
			}
			if req.Provider == "" {
				req.Provider = Stripe
			}
			if req.Tool == "" {
				req.Tool, req.Description = first.Tool, first.Description
			}
			h, err := f.ledger.Hold(ctx, req)
			wantCode(t, err, tt.code)
			if h.State != tt.state {
				t.Fatalf("replay returned state %q, want %q", h.State, tt.state)
			}
			if tt.state != "" && req.Principal == alice && (h.ID != first.ID || !h.Created.Equal(first.Created) || h.Tool != first.Tool) {
				t.Fatalf("replay returned %+v, want the first hold %+v", h, first)
			}
			f.wantMoney(tt.spent, tt.held)
		})
	}
}

// duplicateHook sends every EVALSHA/EVAL twice, as go-redis does when it
// retries a command whose reply was lost after Redis had run it.
type duplicateHook struct{}

func (h *duplicateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *duplicateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			_ = next(ctx, cmd) // the reply that was "lost"
		}
		return next(ctx, cmd)
	}
}

func (h *duplicateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		_ = next(ctx, cmds)
		return next(ctx, cmds)
	}
}

func TestRetriedScriptsCountOnce(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	// Warm the script cache, so that the hook sees EVALSHA.
	f.mustHold("warm", usd(1))
	wantCode(t, f.ledger.Release(ctx, alice, "warm", ""), "")
	f.rdb.AddHook(&duplicateHook{})

	f.mustHold("h1", usd(1000))
	f.wantMoney(0, 1000)
	f.mustHold("h2", usd(2000), Budget{"s1", usd(5000)})
	f.wantMoney(0, 3000)
	if spent, held, _ := f.budgetOf("s1", usd(5000)); spent.Minor != 0 || held.Minor != 2000 {
		t.Fatalf("budget spent %s held %s after a retried hold", spent, held)
	}
	wantCode(t, f.ledger.Commit(ctx, alice, "h1", usd(700)), "")
	f.wantMoney(700, 2000)
	wantCode(t, f.ledger.Release(ctx, alice, "h2", "retried"), "")
	f.wantMoney(700, 0)
	if spent, held, _ := f.budgetOf("s1", usd(5000)); spent.Minor != 0 || held.Minor != 0 {
		t.Fatalf("budget spent %s held %s after a retried release", spent, held)
	}
	f.mustHold("h3", usd(300))
	f.clock.Advance(DefaultHoldTTL)
	wantCode(t, f.ledger.Reconcile(ctx, alice, "h3", usd(300), "charged after all"), "")
	f.wantMoney(1000, 0)
}

func TestHoldIsOneRoundTrip(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	// Connect first: the handshake is not the ledger's.
	if _, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	f.rdb.AddHook(hook)

	// Cold: one pipeline answered NOSCRIPT, then one EVAL that caches it.
	f.mustHold("cold", usd(1))
	if n := hook.N.Load(); n > 2 {
		t.Fatalf("cold hold took %d round trips, want at most 2", n)
	}
	wantCode(t, f.ledger.Commit(ctx, alice, "cold", usd(1)), "")
	wantCode(t, f.ledger.Release(ctx, alice, "cold", ""), HoldConflict)
	if _, err := f.ledger.Status(ctx, alice, Stripe); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		op   func(i int) error
	}{
		{"hold", func(i int) error {
			_, err := f.hold(holdName(i), usd(1), Budget{"s1", usd(100000)}, Budget{"s0", usd(100000)})
			return err
		}},
		{"commit", func(i int) error { return f.ledger.Commit(ctx, alice, holdName(i), usd(1)) }},
		{"hold again", func(i int) error { _, err := f.hold(holdName(100+i), usd(1)); return err }},
		{"release", func(i int) error { return f.ledger.Release(ctx, alice, holdName(100+i), "") }},
		{"status", func(int) error { _, err := f.ledger.Status(ctx, alice, Stripe); return err }},
		{"refused hold", func(int) error {
			_, err := f.hold("big", usd(DefaultCapMinor+1))
			wantCode(t, err, CapExceeded)
			return nil
		}},
	}
	const calls = 20
	for _, tt := range tests {
		hook.N.Store(0)
		for i := range calls {
			wantCode(t, tt.op(i), "")
		}
		if n := hook.N.Load(); n != calls {
			t.Fatalf("%d calls of %s took %d round trips, want one each", calls, tt.name, n)
		}
	}
}

func holdName(i int) string { return "h" + time.Duration(i).String() }
