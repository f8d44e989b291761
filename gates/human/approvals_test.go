package human

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// purchase is what alice's agent asks her to approve.
func purchase(b Binding) Approval {
	return Approval{Binding: b, Kind: Purchase,
		Summary: "Register example.dev for one year at Cloudflare Registrar: USD 12.18",
		Fields:  map[string]string{"item": "example.dev, 1 year", "price": "USD 12.18", "provider": "cloudflare", "month_to_date": "USD 40.00"}}
}

func (f *fixture) create(a Approval) Approval {
	f.t.Helper()
	out, err := f.approvals.Create(context.Background(), a)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	return out
}

func TestApprovalLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.create(purchase(call))
	now := f.clock.Now()
	if len(a.ID) != 26 || a.Status != StatusPending || !a.Created.Equal(now) || !a.Expires.Equal(now.Add(DefaultTTL)) {
		t.Fatalf("created %+v", a)
	}
	got, err := f.approvals.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary != a.Summary || got.Fields["price"] != "USD 12.18" || got.Binding != call || got.Kind != Purchase {
		t.Fatalf("got %+v, created %+v", got, a)
	}

	// The agent cannot use it before the human decides.
	_, err = f.approvals.Consume(ctx, a.ID, call)
	wantCode(t, err, ApprovalPending)

	// Bob, signed in on the page with alice's approval URL, is refused and
	// learns nothing about it.
	d, err := f.approvals.Decide(ctx, a.ID, bob, true, "page")
	wantCode(t, err, ApprovalForbidden)
	for _, s := range []string{a.Summary, "12.18", "alice", "example.dev", "deploy", "pending"} {
		if strings.Contains(fault.PublicOf(err), s) || strings.Contains(err.Error(), s) {
			t.Fatalf("the refusal shows %q: %v", s, err)
		}
	}
	if d.ID != "" || d.Summary != "" {
		t.Fatalf("the refusal returned %+v", d)
	}

	f.clock.Advance(time.Minute)
	d, err = f.approvals.Decide(ctx, a.ID, alice, true, "page")
	wantCode(t, err, "")
	if d.Status != StatusApproved || !d.Decided.Equal(f.clock.Now()) || d.DecidedBy != "page" {
		t.Fatalf("decided %+v", d)
	}
	_, err = f.approvals.Decide(ctx, a.ID, alice, false, "cli")
	wantCode(t, err, ApprovalDecided)

	used, err := f.approvals.Consume(ctx, a.ID, call)
	wantCode(t, err, "")
	if used.Status != StatusUsed || used.Used.IsZero() {
		t.Fatalf("consumed %+v", used)
	}
	_, err = f.approvals.Consume(ctx, a.ID, call)
	wantCode(t, err, ApprovalUsed)
	_, err = f.approvals.Decide(ctx, a.ID, alice, true, "page")
	wantCode(t, err, ApprovalDecided)
}

func TestApprovalRefusals(t *testing.T) {
	other := func(mod func(b *Binding)) Binding { b := call; mod(&b); return b }
	tests := []struct {
		name string
		// attack runs against a fresh pending approval and returns the
		// refusal of the step under test.
		attack func(f *fixture, id string) error
		code   fault.Code
	}{
		{"denied approval cannot be consumed", func(f *fixture, id string) error {
			f.decide(id, alice, false)
			_, err := f.approvals.Consume(context.Background(), id, call)
			return err
		}, ApprovalDenied},
		{"denied approval cannot be approved after", func(f *fixture, id string) error {
			f.decide(id, alice, false)
			_, err := f.approvals.Decide(context.Background(), id, alice, true, "page")
			return err
		}, ApprovalDecided},
		{"late accept after expiry", func(f *fixture, id string) error {
			f.clock.Advance(DefaultTTL)
			_, err := f.approvals.Decide(context.Background(), id, alice, true, "page")
			return err
		}, ApprovalExpired},
		{"approved, then expired before the retry", func(f *fixture, id string) error {
			f.decide(id, alice, true)
			f.clock.Advance(DefaultTTL)
			_, err := f.approvals.Consume(context.Background(), id, call)
			return err
		}, ApprovalExpired},
		{"consume from another session", func(f *fixture, id string) error {
			f.decide(id, alice, true)
			_, err := f.approvals.Consume(context.Background(), id, other(func(b *Binding) { b.Session = "s2" }))
			return err
		}, ApprovalMismatch},
		{"consume for another tool", func(f *fixture, id string) error {
			f.decide(id, alice, true)
			_, err := f.approvals.Consume(context.Background(), id, other(func(b *Binding) { b.Tool = "domain_register" }))
			return err
		}, ApprovalMismatch},
		{"consume with changed arguments", func(f *fixture, id string) error {
			f.decide(id, alice, true)
			_, err := f.approvals.Consume(context.Background(), id, other(func(b *Binding) { b.ArgsDigest = "0" }))
			return err
		}, ApprovalMismatch},
		{"mismatch reveals nothing of a pending approval", func(f *fixture, id string) error {
			_, err := f.approvals.Consume(context.Background(), id, other(func(b *Binding) { b.Session = "s2" }))
			return err
		}, ApprovalMismatch},
		{"another principal's approval id", func(f *fixture, id string) error {
			f.decide(id, alice, true)
			_, err := f.approvals.Consume(context.Background(), id, other(func(b *Binding) { b.Principal = bob }))
			return err
		}, fault.NotFound},
		{"unknown approval id", func(f *fixture, id string) error {
			_, err := f.approvals.Consume(context.Background(), RandomID(), call)
			return err
		}, fault.NotFound},
		{"malformed approval id", func(f *fixture, id string) error {
			_, err := f.approvals.Consume(context.Background(), "../"+id, call)
			return err
		}, fault.NotFound},
		{"decide an unknown id", func(f *fixture, id string) error {
			_, err := f.approvals.Decide(context.Background(), RandomID(), alice, true, "page")
			return err
		}, fault.NotFound},
		{"decide by another principal", func(f *fixture, id string) error {
			_, err := f.approvals.Decide(context.Background(), id, bob, false, "page")
			return err
		}, ApprovalForbidden},
		{"decide by a principal that is a prefix", func(f *fixture, id string) error {
			_, err := f.approvals.Decide(context.Background(), id, "user:alice", true, "page")
			return err
		}, ApprovalForbidden},
		{"get an unknown id", func(f *fixture, id string) error {
			_, err := f.approvals.Get(context.Background(), RandomID())
			return err
		}, fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			a := f.create(purchase(call))
			err := tt.attack(f, a.ID)
			wantCode(t, err, tt.code)
			for _, s := range []string{"12.18", "example.dev", "s1", "deploy_promote"} {
				if strings.Contains(fault.PublicOf(err), s) {
					t.Fatalf("the refusal shows %q: %s", s, fault.PublicOf(err))
				}
			}
		})
	}
}

func (f *fixture) decide(id, principal string, approve bool) {
	f.t.Helper()
	if _, err := f.approvals.Decide(context.Background(), id, principal, approve, "test"); err != nil {
		f.t.Fatalf("decide %s: %v", id, err)
	}
}

// An approved approval is used once even when the agent's retries race on
// several replicas.
func TestConcurrentConsumesOfOneApproval(t *testing.T) {
	f := newFixture(t)
	a := f.create(purchase(call))
	f.decide(a.ID, alice, true)
	const racers = 50
	var won atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, err := f.approvals.Consume(context.Background(), a.ID, call)
			switch {
			case err == nil:
				won.Add(1)
			case fault.CodeOf(err) != ApprovalUsed:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d consumes succeeded, want exactly 1", won.Load())
	}
}

// Approve and deny race (two tabs, the page and the CLI): one decision wins
// and the other is told it was already decided.
func TestConcurrentDecisions(t *testing.T) {
	f := newFixture(t)
	a := f.create(purchase(call))
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := f.approvals.Decide(context.Background(), a.ID, alice, i%2 == 0, "race")
			switch {
			case err == nil:
				ok.Add(1)
			case fault.CodeOf(err) != ApprovalDecided:
				t.Errorf("decide %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d decisions recorded, want 1", ok.Load())
	}
}

func TestListApprovals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.create(purchase(call))
	f.clock.Advance(time.Second)
	second := f.create(Approval{Binding: call, Kind: Production, Summary: "Promote pv-1 to production"})
	f.clock.Advance(time.Second)
	third := f.create(purchase(call))
	f.create(purchase(Binding{Principal: bob, Session: "s1", Tool: "t", ArgsDigest: "d"}))
	f.decide(second.ID, alice, false)

	all, err := f.approvals.List(ctx, alice, false)
	if err != nil {
		t.Fatal(err)
	}
	if ids(all) != ids([]Approval{third, second, first}) {
		t.Fatalf("listed %s, want newest first", ids(all))
	}
	pending, err := f.approvals.List(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	if ids(pending) != ids([]Approval{third, first}) {
		t.Fatalf("pending %s", ids(pending))
	}
	// Past their expiry, pending approvals read as expired and are no
	// longer pending; past the retention they are gone.
	f.clock.Advance(DefaultTTL)
	pending, _ = f.approvals.List(ctx, alice, true)
	all, _ = f.approvals.List(ctx, alice, false)
	if len(pending) != 0 || len(all) != 3 || all[0].Status != StatusExpired || all[1].Status != StatusDenied {
		t.Fatalf("after expiry: pending %d, all %+v", len(pending), all)
	}
	if got, _ := f.approvals.Get(ctx, first.ID); got.Status != StatusExpired {
		t.Fatalf("get after expiry: %s", got.Status)
	}
	f.clock.Advance(DefaultRetention)
	all, _ = f.approvals.List(ctx, alice, false)
	if len(all) != 0 {
		t.Fatalf("%d approvals listed after the retention", len(all))
	}
	if n := f.rdb.ZCard(ctx, f.approvals.keys.approvals(alice)).Val(); n != 0 {
		t.Fatalf("index keeps %d purged entries", n)
	}
}

func ids(as []Approval) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.ID[:6] + " ")
	}
	return b.String()
}

func TestApprovalKeysAndTTL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.create(purchase(call))
	keep := DefaultTTL + DefaultRetention
	for _, k := range []string{"tg:{" + alice + "}:approval:" + a.ID, "tg:approval:" + a.ID} {
		ttl := f.rdb.PTTL(ctx, k).Val()
		if ttl > keep || ttl < keep-5*time.Second {
			t.Fatalf("%s TTL %v, want about %v", k, ttl, keep)
		}
	}
	if p := f.rdb.Get(ctx, "tg:approval:"+a.ID).Val(); p != alice {
		t.Fatalf("owner %q", p)
	}
}

func TestCreateRefusesBadApprovals(t *testing.T) {
	f := newFixture(t)
	many := map[string]string{}
	for i := range maxFields + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	tests := []struct {
		name string
		a    Approval
	}{
		{"no binding", Approval{Kind: Purchase, Summary: "x"}},
		{"unknown kind", Approval{Binding: call, Kind: "transfer", Summary: "x"}},
		{"nothing shown", Approval{Binding: call, Kind: Purchase}},
		{"summary with a control character", Approval{Binding: call, Kind: Purchase, Summary: "pay\x1b[2J"}},
		{"field name with a space", Approval{Binding: call, Kind: Purchase, Summary: "x", Fields: map[string]string{"the price": "1"}}},
		{"field value too long", Approval{Binding: call, Kind: Purchase, Summary: "x", Fields: map[string]string{"price": strings.Repeat("9", maxFieldValue+1)}}},
		{"too many fields", Approval{Binding: call, Kind: Purchase, Summary: "x", Fields: many}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.approvals.Create(context.Background(), tt.a)
			wantCode(t, err, fault.InvalidArgument)
		})
	}
	// A broken id source is refused, not stored.
	bad, err := NewApprovals(f.rdb, ApprovalsConfig{NewID: func() string { return "a:b" }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Create(context.Background(), purchase(call))
	wantCode(t, err, fault.Internal)
	fixed, _ := NewApprovals(f.rdb, ApprovalsConfig{NewID: func() string { return "same" }})
	_, err = fixed.Create(context.Background(), purchase(call))
	wantCode(t, err, "")
	_, err = fixed.Create(context.Background(), purchase(call))
	wantCode(t, err, fault.Internal)
}

func TestApprovalsRoundTrips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Warm the script cache.
	w := f.create(purchase(call))
	f.decide(w.ID, alice, true)
	_, _ = f.approvals.Consume(ctx, w.ID, call)

	hook := &countHook{}
	f.rdb.AddHook(hook)
	a := f.create(purchase(call))
	f.decide(a.ID, alice, true)
	_, err := f.approvals.Consume(ctx, a.ID, call)
	wantCode(t, err, "")
	_, err = f.approvals.Decide(ctx, a.ID, bob, true, "page")
	wantCode(t, err, ApprovalForbidden)
	if n := hook.N.Load(); n != 4 {
		t.Fatalf("create, decide, consume and a forbidden decide took %d round trips, want 4", n)
	}
}

// TestPendingApprovalsPerPrincipal: one principal may have MaxPending
// approvals asked within an approval's lifetime; one more is refused with
// too_many_requests and leaves nothing behind, another principal is not
// affected, and once the first expire there is room again.
func TestPendingApprovalsPerPrincipal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var err error
	if f.approvals, err = NewApprovals(f.rdb, ApprovalsConfig{Now: f.clock.Now, MaxPending: 3}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.create(purchase(call))
	}
	keysBefore, _ := f.rdb.Keys(ctx, "*").Result()
	_, err = f.approvals.Create(ctx, purchase(call))
	wantCode(t, err, "too_many_requests")
	if !strings.Contains(fault.PublicOf(err), "nothing was asked") {
		t.Fatalf("refusal does not say nothing was done: %v", fault.PublicOf(err))
	}
	keysAfter, _ := f.rdb.Keys(ctx, "*").Result()
	if len(keysAfter) != len(keysBefore) {
		t.Fatalf("a refused approval left keys behind: %d before, %d after", len(keysBefore), len(keysAfter))
	}
	other := call
	other.Principal = bob
	f.create(purchase(other))
	// Deciding does not free a place within the lifetime; expiry does.
	f.clock.Advance(DefaultTTL + time.Second)
	f.create(purchase(call))
}
