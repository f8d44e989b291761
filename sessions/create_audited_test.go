package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// A session and its exchange entry exist together or not at all: the
// create script and the append are one script.
func TestCreateAuditedWritesSessionAndEntryTogether(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := newAudit(t, f.rdb, f.clock, AuditConfig{})
	hook := &testkit.CountHook{}
	f.rdb.AddHook(hook)
	parentIn := Session{Principal: alice, Actors: []string{agent}, ClientID: agent, Expires: f.clock.Now().Add(time.Hour)}
	parent, e, err := f.store.CreateAudited(ctx, parentIn, a, Entry{Event: "exchange", Principal: alice, Decision: DecisionAllow})
	if err != nil || e.Hash == "" || e.Seq != 1 {
		t.Fatalf("create = %+v, entry %+v, %v", parent, e, err)
	}
	// Warm: the reservation pipeline and the fused script, two round trips.
	before := hook.N.Load()
	child, _, err := f.store.CreateAudited(ctx, Session{Principal: alice, Actors: []string{agent}, ClientID: agent,
		Parent: parent.ID, Expires: f.clock.Now().Add(time.Hour)}, a, Entry{Event: "exchange", Principal: alice, Decision: DecisionAllow})
	if err != nil {
		t.Fatal(err)
	}
	if n := hook.N.Load() - before; n != 2 {
		t.Errorf("a delegated create took %d round trips, want 2", n)
	}
	// A revoked parent refuses the child: no session, no entry.
	if _, err := f.store.Revoke(ctx, alice, parent.ID, "test"); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.store.CreateAudited(ctx, Session{Principal: alice, Actors: []string{agent}, ClientID: agent,
		Parent: parent.ID, Expires: f.clock.Now().Add(time.Hour)}, a, Entry{Event: "exchange", Principal: alice, Decision: DecisionAllow})
	if fault.CodeOf(err) != fault.SessionRevoked {
		t.Fatalf("child of a revoked parent: %v", err)
	}
	res := verifyOK(t, a, 2)
	if res.Chains != 2 {
		t.Fatalf("verify %+v", res)
	}
	if _, err := f.store.Get(ctx, alice, child.ID); err != nil {
		t.Fatalf("the child session is missing: %v", err)
	}
	// An entry of another principal is refused before anything is written.
	_, _, err = f.store.CreateAudited(ctx, Session{Principal: alice, Expires: f.clock.Now().Add(time.Hour)}, a,
		Entry{Event: "exchange", Principal: bob, Decision: DecisionAllow})
	testkit.WantCode(t, err, fault.InvalidArgument)
}
