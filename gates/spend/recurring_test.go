package spend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// subscribe places and commits the first period of a monthly commitment.
func (f *fixture) subscribe(id string, amount int64) error {
	ctx := context.Background()
	h, err := f.ledger.Hold(ctx, HoldRequest{HoldID: id, Principal: alice, Provider: Stripe, Amount: usd(amount),
		Recurring: usd(amount), Tool: "subscription_start"})
	if err != nil {
		return err
	}
	return f.ledger.Commit(ctx, alice, h.ID, usd(amount))
}

func TestRecurringCommitmentsBoundFutureMonths(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	if err := f.subscribe("s1", 4000); err != nil {
		t.Fatal(err)
	}
	if err := f.subscribe("s2", 4000); err != nil {
		t.Fatal(err)
	}
	// 80.00 committed per month: this month has 20.00 left, and a third
	// 30.00/month subscription fits neither this month nor any later one.
	err := f.subscribe("s3", 3000)
	wantCode(t, err, CapExceeded)
	if pub := fault.PublicOf(err); !strings.Contains(pub, "recurring total 80.00 USD") {
		t.Fatalf("message %q does not name the recurring total", pub)
	}
	// A 15.00/month subscription fits this month (20.00 left) and every
	// future month (95.00 ≤ 100.00).
	if err := f.subscribe("s4", 1500); err != nil {
		t.Fatal(err)
	}
	st := f.status()
	if st.Recurring != usd(9500) || st.Spent != usd(9500) || st.Due != usd(0) {
		t.Fatalf("status %+v", st)
	}
	// Next month: 95.00 is due and not charged yet, so only 5.00 is left
	// for anything else, and a one-off of 10.00 is refused.
	f.clock.Set(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	st = f.status()
	if st.Due != usd(9500) || st.Remaining != usd(500) || st.Spent != usd(0) {
		t.Fatalf("next month status %+v", st)
	}
	_, err = f.hold("one-off", usd(1000))
	wantCode(t, err, CapExceeded)
	// Renewing moves the commitment from due to spent; a replayed invoice
	// counts once.
	for i := 0; i < 2; i++ {
		replay, known, err := f.ledger.Renew(ctx, Renewal{Principal: alice, Provider: Stripe, Commitment: "s1", Invoice: "in_1",
			Ref: "sub_1", Amount: usd(4000), Month: "2026-12", EveryMonths: 1})
		if err != nil || !known || replay != (i == 1) {
			t.Fatalf("renew %d: replay %v known %v err %v", i, replay, known, err)
		}
	}
	st = f.status()
	if st.Spent != usd(4000) || st.Due != usd(5500) || st.Remaining != usd(500) {
		t.Fatalf("after renewal %+v", st)
	}
	// Cancelling s2 frees its 40.00 for this month and the ones after.
	if ended, err := f.ledger.EndRecurring(ctx, alice, Stripe, "s2"); err != nil || !ended {
		t.Fatalf("end: %v %v", ended, err)
	}
	st = f.status()
	if st.Recurring != usd(5500) || st.Due != usd(1500) || st.Remaining != usd(4500) {
		t.Fatalf("after cancel %+v", st)
	}
	// Another month shows through MonthStatus.
	nov, err := f.ledger.MonthStatus(ctx, alice, Stripe, "2026-11")
	if err != nil || nov.Spent != usd(9500) {
		t.Fatalf("november %+v %v", nov, err)
	}
	if _, err := f.ledger.MonthStatus(ctx, alice, Stripe, "2026-13"); fault.CodeOf(err) != fault.InvalidArgument {
		t.Fatalf("bad month: %v", err)
	}
}

func TestReleasedSubscriptionHoldEndsItsCommitment(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	h, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "s", Principal: alice, Provider: Stripe, Amount: usd(9000), Recurring: usd(9000)})
	if err != nil {
		t.Fatal(err)
	}
	if st := f.status(); st.Recurring != usd(9000) {
		t.Fatalf("held subscription not reserved: %+v", st)
	}
	if err := f.ledger.Release(ctx, alice, h.ID, "declined"); err != nil {
		t.Fatal(err)
	}
	if st := f.status(); st.Recurring != usd(0) || st.Remaining != usd(10000) {
		t.Fatalf("after release %+v", st)
	}
}

// Over random sequences of subscriptions, renewals, cancellations,
// one-month cap raises and one-off purchases across 12 months, no month's commits exceed its cap:
// recurring commitments are admitted only within every future month's cap,
// and what is due in a month is reserved against one-off spending.
func TestRecurringNeverExceedsAnyMonthsCap(t *testing.T) {
	const capMinor = 10000
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			f := newFixture(t, Config{})
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			type sub struct {
				id     string
				amount int64
				next   string
			}
			var subs []*sub
			n := 0
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for m := 0; m < 12; m++ {
				day := start.AddDate(0, m, 0)
				mon := month(day)
				// Renewals come in on some day of the month, interleaved
				// with everything else.
				for step := 0; step < 8; step++ {
					f.clock.Set(day.Add(time.Duration(step*3) * 24 * time.Hour))
					switch rng.IntN(5) {
					case 4: // a human raises this month's cap (cap_raise)
						if _, _, err := f.ledger.RaiseCap(ctx, alice, Stripe, mon, usd(capMinor+int64(rng.IntN(100))*100)); err != nil {
							t.Fatal(err)
						}
					case 0: // subscribe
						n++
						s := &sub{id: fmt.Sprintf("s%d", n), amount: int64(500 + rng.IntN(40)*100), next: nextMonth(mon)}
						err := f.subscribe(s.id, s.amount)
						if err == nil {
							subs = append(subs, s)
						} else if fault.CodeOf(err) != CapExceeded {
							t.Fatal(err)
						}
					case 1: // cancel one
						if len(subs) > 0 {
							i := rng.IntN(len(subs))
							if _, err := f.ledger.EndRecurring(ctx, alice, Stripe, subs[i].id); err != nil {
								t.Fatal(err)
							}
							subs = append(subs[:i], subs[i+1:]...)
						}
					case 2: // one-off purchase
						n++
						id := fmt.Sprintf("o%d", n)
						amt := int64(100 + rng.IntN(60)*100)
						if _, err := f.hold(id, usd(amt)); err == nil {
							wantCode(t, f.ledger.Commit(ctx, alice, id, usd(amt)), "")
						} else if fault.CodeOf(err) != CapExceeded {
							t.Fatal(err)
						}
					case 3: // the provider renews what is due
						for _, s := range subs {
							if s.next <= mon {
								if _, _, err := f.ledger.Renew(ctx, Renewal{Principal: alice, Provider: Stripe, Commitment: s.id,
									Invoice: s.id + "-" + mon, Amount: usd(s.amount), Month: mon, EveryMonths: 1}); err != nil {
									t.Fatal(err)
								}
								s.next = nextMonth(mon)
							}
						}
					}
				}
				// By the end of the month every live subscription has renewed.
				for _, s := range subs {
					if s.next <= mon {
						if _, _, err := f.ledger.Renew(ctx, Renewal{Principal: alice, Provider: Stripe, Commitment: s.id,
							Invoice: s.id + "-" + mon, Amount: usd(s.amount), Month: mon, EveryMonths: 1}); err != nil {
							t.Fatal(err)
						}
						s.next = nextMonth(mon)
					}
				}
				st, err := f.ledger.MonthStatus(ctx, alice, Stripe, mon)
				if err != nil {
					t.Fatal(err)
				}
				if st.Spent.Minor > st.Cap.Minor || st.Held.Minor != 0 || st.Cap.Minor < capMinor {
					t.Fatalf("month %s: spent %s held %s past the %s cap", mon, st.Spent, st.Held, st.Cap)
				}
			}
		})
	}
}

func TestStoredCapSeenByAnotherReplica(t *testing.T) {
	a := newFixture(t, Config{})
	b := newFixtureOn(t, a.rdb, Config{Caps: map[string]money.Money{Stripe: usd(5000)}})
	ctx := context.Background()
	// Before any stored cap each replica falls back on its own flags.
	if s := b.statusOf(alice, Stripe); s.Cap != usd(5000) {
		t.Fatalf("replica b default cap %s", s.Cap)
	}
	ch, err := a.ledger.SetCap(ctx, alice, Stripe, usd(15000))
	if err != nil || ch.From != usd(10000) || ch.To != usd(15000) || ch.Stored {
		t.Fatalf("set: %+v %v", ch, err)
	}
	if s := b.statusOf(alice, Stripe); s.Cap != usd(15000) {
		t.Fatalf("replica b sees cap %s after a set on replica a", s.Cap)
	}
	if _, err := b.ledger.Hold(ctx, HoldRequest{HoldID: "big", Principal: alice, Provider: Stripe, Amount: usd(12000)}); err != nil {
		t.Fatalf("replica b refused a hold within the stored cap: %v", err)
	}
	// A cap below what is spent and held is allowed; remaining shows 0
	// with a note, and new spending stops.
	ch, err = b.ledger.SetCap(ctx, alice, Stripe, usd(3000))
	if err != nil || ch.From != usd(15000) || !ch.Stored {
		t.Fatalf("lower: %+v %v", ch, err)
	}
	s := a.statusOf(alice, Stripe)
	if s.Remaining != usd(0) || s.Note == "" {
		t.Fatalf("status under a lowered cap %+v", s)
	}
	_, err = a.ledger.Hold(ctx, HoldRequest{HoldID: "more", Principal: alice, Provider: Stripe, Amount: usd(1)})
	wantCode(t, err, CapExceeded)
	caps, err := a.ledger.StoredCaps(ctx, "")
	if err != nil || len(caps) != 1 || caps[0].Cap != usd(3000) || caps[0].Principal != alice {
		t.Fatalf("stored caps %+v %v", caps, err)
	}
	// Bob keeps the default.
	if s := a.statusOf(bob, Stripe); s.Cap != usd(10000) {
		t.Fatalf("bob's cap %s", s.Cap)
	}
	_, err = a.ledger.SetCap(ctx, alice, "paypal", usd(1))
	wantCode(t, err, fault.InvalidArgument)
	_, err = a.ledger.SetCap(ctx, alice, Stripe, eur(100))
	wantCode(t, err, InvalidAmount)
}

func TestRaiseCapIsOneMonthAndOnlyUp(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	ch, raised, err := f.ledger.RaiseCap(ctx, alice, Stripe, "2026-11", usd(20000))
	if err != nil || !raised || ch.From != usd(10000) || ch.To != usd(20000) || ch.Month != "2026-11" {
		t.Fatalf("raise: %+v %v %v", ch, raised, err)
	}
	if s := f.status(); s.Cap != usd(20000) {
		t.Fatalf("cap after raise %s", s.Cap)
	}
	// Not a lowering, and not twice.
	if _, raised, err := f.ledger.RaiseCap(ctx, alice, Stripe, "2026-11", usd(15000)); err != nil || raised {
		t.Fatalf("lowering raise: %v %v", raised, err)
	}
	f.clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if s := f.status(); s.Cap != usd(10000) {
		t.Fatalf("december cap %s, want the standing 100.00", s.Cap)
	}
	// A raise does not admit recurring commitments past the standing cap.
	f.clock.Set(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	err = f.subscribe("big", 15000)
	wantCode(t, err, CapExceeded)
	if !strings.Contains(fault.PublicOf(err), "recurring total") {
		t.Fatalf("message %q", fault.PublicOf(err))
	}
}

func TestChargesListed(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	if err := f.ledger.BindSubscription(ctx, Subscription{ID: "sub_1", Principal: alice, Provider: Stripe, Commitment: "h1", Agent: "agent:a"},
		"2026-11", "in_1", usd(900)); err != nil {
		t.Fatal(err)
	}
	s, ok, err := f.ledger.SubscriptionOf(ctx, alice, "sub_1")
	if err != nil || !ok || s.Principal != alice || s.Agent != "agent:a" {
		t.Fatalf("lookup %+v %v %v", s, ok, err)
	}
	if _, ok, _ := f.ledger.SubscriptionOf(ctx, alice, "sub_x"); ok {
		t.Fatal("unknown subscription found")
	}
	cs, err := f.ledger.Charges(ctx, alice, Stripe, "2026-11")
	if err != nil || len(cs) != 1 || cs[0].Key != "in_1" || cs[0].Amount != usd(900) || cs[0].Ref != "sub_1" {
		t.Fatalf("charges %+v %v", cs, err)
	}
	seen, err := f.ledger.SeenWebhookEvent(ctx, "evt_1")
	if err != nil || seen {
		t.Fatalf("first event seen=%v %v", seen, err)
	}
	if seen, _ := f.ledger.SeenWebhookEvent(ctx, "evt_1"); !seen {
		t.Fatal("replayed event not seen")
	}
}
