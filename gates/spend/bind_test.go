package spend

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// The binding of a subscription is written in the same script as the
// commit of its first period, and only after it.
func TestBindStepRunsWithTheCommit(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	h, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "s1", Principal: alice, Provider: Stripe, Amount: usd(900),
		Recurring: usd(900), Tool: "subscription_start"})
	if err != nil {
		t.Fatal(err)
	}
	sub := Subscription{ID: "sub_1", Provider: Stripe, Agent: "agent:a", Human: alice, Customer: "cus_1"}

	// Before the commit the bind step refuses and writes nothing.
	bst, bparse, err := f.ledger.BindStep(alice, h.ID, sub, "in_1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := fuse.Run(ctx, f.rdb, bst)
	if err != nil || bparse(res.Replies[0]) == nil {
		t.Fatalf("bind before commit: %v %v", res, err)
	}
	if _, ok, _ := f.ledger.SubscriptionOf(ctx, alice, "sub_1"); ok {
		t.Fatal("bound before the commit")
	}

	cst, cparse, err := f.ledger.CommitStep(alice, h.ID, usd(900))
	if err != nil {
		t.Fatal(err)
	}
	res, err = fuse.Run(ctx, f.rdb, cst, bst)
	if err != nil || len(res.Replies) != 2 {
		t.Fatalf("commit+bind: %+v %v", res, err)
	}
	if err := cparse(res.Replies[0]); err != nil {
		t.Fatal(err)
	}
	if err := bparse(res.Replies[1]); err != nil {
		t.Fatal(err)
	}
	s, ok, err := f.ledger.SubscriptionOf(ctx, alice, "sub_1")
	if err != nil || !ok || s.Commitment != "s1" || s.Principal != alice || s.Agent != "agent:a" || s.Customer != "cus_1" {
		t.Fatalf("binding %+v %v %v", s, ok, err)
	}
	if _, ok, _ := f.ledger.SubscriptionOf(ctx, bob, "sub_1"); ok {
		t.Fatal("another principal sees the binding")
	}
	cs, err := f.ledger.Charges(ctx, alice, Stripe, h.Month)
	if err != nil || len(cs) != 1 || cs[0].Key != "in_1" || cs[0].Amount != usd(900) || cs[0].Ref != "sub_1" {
		t.Fatalf("charges %+v %v", cs, err)
	}
	rec, err := f.ledger.Recurring(ctx, alice, Stripe)
	if err != nil || len(rec) != 1 || rec[0].Ref != "sub_1" || rec[0].Amount != usd(900) {
		t.Fatalf("recurring %+v %v", rec, err)
	}
}
