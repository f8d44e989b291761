package spend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// The ledger's property (SPEC §9.1): under random holds, commits, releases
// and expiries from many goroutines, spent + held never exceeds the cap or
// any task budget, and at the end the counters are exactly what the holds'
// outcomes add up to. With one goroutine the model is exact at every step:
// it predicts every refusal and every counter.
func TestLedgerProperty(t *testing.T) {
	for _, workers := range []int{1, 8} {
		for seed := range 3 {
			t.Run(fmt.Sprintf("workers=%d/seed=%d", workers, seed), func(t *testing.T) {
				t.Parallel()
				runProperty(t, workers, uint64(seed))
			})
		}
	}
}

const (
	propCap  = 10000 // cents
	propRoot = 7000  // the root session's task budget
	propKid  = 2500  // each worker's child session's budget
)

type mhold struct {
	id      string
	amount  int64
	budgets []string
	expires time.Time
	state   State
	actual  int64
}

// model is one worker's view of its own holds.
type model struct {
	holds []*mhold
}

// live returns the hold's state at now: an open hold past its TTL has expired.
func (h *mhold) live(now time.Time) State {
	if h.state == StateHeld && !now.Before(h.expires) {
		return StateExpired
	}
	return h.state
}

// totals adds up spent and held at now, for the cap (sid "") or one budget.
func totals(models []*model, sid string, now time.Time) (spent, held int64) {
	for _, m := range models {
		for _, h := range m.holds {
			if sid != "" && !contains(h.budgets, sid) {
				continue
			}
			switch h.live(now) {
			case StateCommitted:
				spent += h.actual
			case StateHeld:
				held += h.amount
			}
		}
	}
	return spent, held
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func runProperty(t *testing.T, workers int, seed uint64) {
	f := newFixture(t, Config{Caps: map[string]money.Money{Stripe: usd(propCap)}})
	ctx := context.Background()
	exact := workers == 1
	models := make([]*model, workers)
	for i := range models {
		models[i] = &model{}
	}
	kid := func(w int) string { return fmt.Sprintf("kid%d", w) }
	maxOf := func(sid string) int64 {
		if sid == "root" {
			return propRoot
		}
		return propKid
	}

	// check asserts the invariants, and with an exact model the counters.
	check := func(w, step int, what string) {
		s, err := f.ledger.Status(ctx, alice, Stripe)
		if err != nil {
			t.Errorf("worker %d step %d: status: %v", w, step, err)
			return
		}
		if s.Spent.Minor+s.Held.Minor > propCap || s.Held.Minor < 0 || s.Spent.Minor < 0 {
			t.Errorf("worker %d step %d (%s): spent %s + held %s over the cap %s", w, step, what, s.Spent, s.Held, s.Cap)
		}
		for _, sid := range []string{"root", kid(w)} {
			sp, hd, _, err := f.ledger.BudgetStatus(ctx, alice, sid, Stripe, usd(maxOf(sid)))
			if err != nil {
				t.Errorf("budget status: %v", err)
				return
			}
			if sp.Minor+hd.Minor > maxOf(sid) {
				t.Errorf("worker %d step %d (%s): budget %s: spent %s + held %s over %d", w, step, what, sid, sp, hd, maxOf(sid))
			}
			if exact {
				if ws, wh := totals(models, sid, f.clock.Now()); sp.Minor != ws || hd.Minor != wh {
					t.Errorf("step %d (%s): budget %s spent %d held %d, model %d %d", step, what, sid, sp.Minor, hd.Minor, ws, wh)
				}
			}
		}
		if exact {
			if ws, wh := totals(models, "", f.clock.Now()); s.Spent.Minor != ws || s.Held.Minor != wh {
				t.Errorf("step %d (%s): spent %d held %d, model %d %d", step, what, s.Spent.Minor, s.Held.Minor, ws, wh)
			}
		}
	}

	steps := 200
	if !exact {
		steps = 60
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			m := models[w]
			for step := range steps {
				if t.Failed() {
					return
				}
				var what string
				switch op := rng.IntN(10); {
				case op < 4 || len(m.holds) == 0:
					what = "hold"
					amt := 1 + rng.Int64N(1500)
					var chain []string
					switch rng.IntN(3) {
					case 0:
						chain = []string{kid(w), "root"}
					case 1:
						chain = []string{"root"}
					}
					var budgets []Budget
					for _, sid := range chain {
						budgets = append(budgets, Budget{sid, usd(maxOf(sid))})
					}
					var want fault.Code
					if exact {
						now := f.clock.Now()
						if sp, hd := totals(models, "", now); sp+hd+amt > propCap {
							want = CapExceeded
						} else {
							for _, sid := range chain {
								if sp, hd := totals(models, sid, now); sp+hd+amt > maxOf(sid) {
									want = BudgetExceeded
									break
								}
							}
						}
					}
					id := fmt.Sprintf("w%d-%d", w, step)
					h, err := f.hold(id, usd(amt), budgets...)
					switch code := fault.CodeOf(err); {
					case err == nil:
						if exact && want != "" {
							t.Errorf("step %d: hold of %d succeeded, model says %s", step, amt, want)
						}
						m.holds = append(m.holds, &mhold{id: id, amount: amt, budgets: chain, expires: h.Expires, state: StateHeld})
					case code == CapExceeded || code == BudgetExceeded:
						if exact && code != want {
							t.Errorf("step %d: hold of %d: %v, model says %q", step, amt, err, want)
						}
					default:
						t.Errorf("step %d: hold: %v", step, err)
					}
				case op < 6:
					what = "commit"
					h := m.holds[rng.IntN(len(m.holds))]
					actual := rng.Int64N(h.amount + 2) // sometimes one more than held
					before := h.live(f.clock.Now())
					err := f.ledger.Commit(ctx, alice, h.id, usd(actual))
					after := h.live(f.clock.Now())
					switch code := fault.CodeOf(err); {
					case err == nil:
						if before != StateHeld && !(before == StateCommitted && h.actual == actual) {
							t.Errorf("step %d: commit of a %s hold succeeded", step, before)
						}
						h.state, h.actual = StateCommitted, actual
					case code == HoldExpired:
						if after != StateExpired {
							t.Errorf("step %d: commit says expired, model says %s", step, after)
						}
						h.state = StateExpired
					case code == HoldConflict:
						if before != StateCommitted && before != StateReleased {
							t.Errorf("step %d: commit of a %s hold: %v", step, before, err)
						}
					case code == InvalidAmount:
						if actual <= h.amount {
							t.Errorf("step %d: commit of %d of %d: %v", step, actual, h.amount, err)
						}
					default:
						t.Errorf("step %d: commit: %v", step, err)
					}
				case op < 8:
					what = "release"
					h := m.holds[rng.IntN(len(m.holds))]
					before := h.live(f.clock.Now())
					err := f.ledger.Release(ctx, alice, h.id, "property")
					switch code := fault.CodeOf(err); {
					case err == nil:
						if before == StateCommitted {
							t.Errorf("step %d: release of a committed hold succeeded", step)
						}
						h.state = StateReleased
					case code == HoldConflict:
						if before != StateCommitted {
							t.Errorf("step %d: release of a %s hold: %v", step, before, err)
						}
					default:
						t.Errorf("step %d: release: %v", step, err)
					}
				default:
					what = "time passes"
					f.clock.Advance(time.Duration(rng.Int64N(int64(DefaultHoldTTL / 2))))
				}
				check(w, step, what)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The end: once everything due has expired, the counters are exactly
	// what the outcomes add up to, on every goroutine's model.
	if _, err := f.ledger.ReapExpired(ctx, alice); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	s := f.status()
	if ws, wh := totals(models, "", now); s.Spent.Minor != ws || s.Held.Minor != wh {
		t.Fatalf("end: spent %d held %d, outcomes add up to %d and %d", s.Spent.Minor, s.Held.Minor, ws, wh)
	}
	for _, sid := range []string{"root", kid(0)} {
		sp, hd, _ := f.budgetOf(sid, usd(maxOf(sid)))
		if ws, wh := totals(models, sid, now); sp.Minor != ws || hd.Minor != wh {
			t.Fatalf("end: budget %s spent %d held %d, outcomes add up to %d and %d", sid, sp.Minor, hd.Minor, ws, wh)
		}
	}
	stale, err := f.ledger.Holds(ctx, HoldFilter{Principal: alice, Stale: true, Limit: MaxHoldsLimit})
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for _, m := range models {
		for _, h := range m.holds {
			if h.live(now) == StateExpired {
				want++
			}
		}
	}
	if len(stale) != want {
		t.Fatalf("end: %d stale holds listed, the model has %d expired", len(stale), want)
	}
}
