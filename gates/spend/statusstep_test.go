package spend

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// MonthStatusStep reads what Status reads (spent, held, cap, recurring,
// remaining), as one step of a fused script, and reaps due holds first.
func TestMonthStatusStepMatchesStatus(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	h, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "h1", Principal: alice, Provider: Cloudflare, Amount: usd(1117), Tool: "domain_register"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ledger.Commit(ctx, alice, h.ID, usd(1117)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "h2", Principal: alice, Provider: Cloudflare, Amount: usd(500), Tool: "domain_register"}); err != nil {
		t.Fatal(err)
	}
	read := func() Status {
		t.Helper()
		step, parse, err := f.ledger.MonthStatusStep(alice, Cloudflare)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fuse.Run(ctx, f.rdb, step)
		if err != nil || res.Stopped != -1 || len(res.Replies) != 1 {
			t.Fatalf("run: %+v %v", res, err)
		}
		st, err := parse(res.Replies[0])
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	got := read()
	want, err := f.ledger.Status(ctx, alice, Cloudflare)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("step read %+v, Status read %+v", got, want)
	}
	if got.Spent != usd(1117) || got.Held != usd(500) || got.Remaining != usd(10000-1117-500) {
		t.Fatalf("status %+v", got)
	}
	// The open hold expires at its TTL: the step reaps it, as Status does.
	f.clock.Advance(f.ledger.cfg.HoldTTL + 1)
	if st := read(); st.Held != usd(0) || st.Remaining != usd(10000-1117) {
		t.Fatalf("after the hold's expiry: %+v", st)
	}
	if _, _, err := f.ledger.MonthStatusStep("", Cloudflare); err == nil {
		t.Fatal("no principal: want an error")
	}
	if _, _, err := f.ledger.MonthStatusStep(alice, "aws"); err == nil {
		t.Fatal("unknown provider: want an error")
	}
}
