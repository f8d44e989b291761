package spend

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// A one-off charge is noted for reconcile in the same script as its
// commit, with the provider, month and amount of the committed hold, once.
func TestNoteStepNotesTheCommittedHold(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	h, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "r1", Principal: alice, Provider: Cloudflare, Amount: usd(1044),
		Tool: "domain_register", Description: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const key = "acct1/example.com"

	// Before the commit the note step refuses and writes nothing.
	nst, nparse, err := f.ledger.NoteStep(alice, h.ID, key, "ray-1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := fuse.Run(ctx, f.rdb, nst)
	if err != nil || nparse(res.Replies[0]) == nil {
		t.Fatalf("note before commit: %+v %v", res, err)
	}
	if cs, _ := f.ledger.Charges(ctx, alice, Cloudflare, h.Month); len(cs) != 0 {
		t.Fatalf("noted before the commit: %+v", cs)
	}

	// Committed for less than held: the note carries the actual amount,
	// in the hold's provider and month.
	cst, cparse, err := f.ledger.CommitStep(alice, h.ID, usd(999))
	if err != nil {
		t.Fatal(err)
	}
	res, err = fuse.Run(ctx, f.rdb, cst, nst)
	if err != nil || len(res.Replies) != 2 || cparse(res.Replies[0]) != nil || nparse(res.Replies[1]) != nil {
		t.Fatalf("commit+note: %+v %v", res, err)
	}
	want := func() {
		t.Helper()
		cs, err := f.ledger.Charges(ctx, alice, Cloudflare, h.Month)
		if err != nil || len(cs) != 1 || cs[0].Key != key || cs[0].Amount != usd(999) || cs[0].Ref != "ray-1" {
			t.Fatalf("charges %+v %v", cs, err)
		}
		if ttl := f.rdb.PTTL(ctx, f.ledger.keys.charges(alice, Cloudflare, h.Month)).Val(); ttl <= 0 {
			t.Fatalf("the charges hash has no expiry (%v)", ttl)
		}
		for _, other := range []struct{ p, prov string }{{alice, Stripe}, {bob, Cloudflare}} {
			if cs, _ := f.ledger.Charges(ctx, other.p, other.prov, h.Month); len(cs) != 0 {
				t.Fatalf("%s %s has charges %+v", other.p, other.prov, cs)
			}
		}
	}
	want()

	// A replay (go-redis retries the script) changes nothing, even with
	// another ref: the first note wins.
	again, aparse, _ := f.ledger.NoteStep(alice, h.ID, key, "ray-2")
	res, err = fuse.Run(ctx, f.rdb, cst, again)
	if err != nil || cparse(res.Replies[0]) != nil || aparse(res.Replies[1]) != nil {
		t.Fatalf("replayed commit+note: %+v %v", res, err)
	}
	want()

	// A released hold is never noted.
	r, err := f.ledger.Hold(ctx, HoldRequest{HoldID: "r2", Principal: alice, Provider: Cloudflare, Amount: usd(500), Tool: "domain_register"})
	if err != nil {
		t.Fatal(err)
	}
	rst, _, _ := f.ledger.ReleaseStep(alice, r.ID, "declined")
	rn, rnparse, _ := f.ledger.NoteStep(alice, r.ID, "acct1/other.com", "ray-3")
	res, err = fuse.Run(ctx, f.rdb, rst, rn)
	if err != nil || len(res.Replies) != 2 || rnparse(res.Replies[1]) == nil {
		t.Fatalf("release+note: %+v %v", res, err)
	}
	want()

	// Malformed input is refused before any script runs.
	for _, bad := range [][3]string{{"nosuch id!", key, ""}, {h.ID, "", ""}, {h.ID, "a\x00b", ""}, {h.ID, key, "bad\x01ref"}} {
		if _, _, err := f.ledger.NoteStep(alice, bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("NoteStep(%q, %q, %q) accepted", bad[0], bad[1], bad[2])
		}
	}
}
