package tools

// Recording fakes for every dependency of the guard (GuardDeps). Each
// appends the step it stands for to one shared log, in the order the guard
// calls it, so a test can assert a call's steps exactly. A fake refuses
// when its err is set.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/gates/idempotency"
	"github.com/tollgate-dev/tollgate/gates/loopguard"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// stepLog is the one ordered record every fake writes to.
type stepLog struct {
	mu    sync.Mutex
	steps []string
}

func (l *stepLog) add(step string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, step)
}

func (l *stepLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.steps...)
}

func (l *stepLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = nil
}

// fakeTrail records every audit entry as "audit:<event>".
type fakeTrail struct {
	log     *stepLog
	mu      sync.Mutex
	entries []sessions.Entry
	err     error
}

func (f *fakeTrail) Append(_ context.Context, e sessions.Entry) (sessions.Entry, error) {
	f.log.add("audit:" + e.Event)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	return e, f.err
}

func (f *fakeTrail) all() []sessions.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sessions.Entry{}, f.entries...)
}

// fakeVerifier maps the one task token to the claims it currently holds
// (step 1, "token").
type fakeVerifier struct {
	log    *stepLog
	token  string
	mu     sync.Mutex
	claims *auth.Claims
}

func (f *fakeVerifier) Verify(_ context.Context, token string) (*auth.Claims, error) {
	f.log.add("token")
	f.mu.Lock()
	defer f.mu.Unlock()
	if token != f.token || f.claims == nil {
		return nil, fault.New(fault.Unauthenticated, "unknown task token")
	}
	c := *f.claims
	return &c, nil
}

func (f *fakeVerifier) set(c *auth.Claims) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = c
}

// fakeSessions is the session check (step 2) and, as a second instance
// named "session.recheck", the pipeline's SessionReader.
type fakeSessions struct {
	log  *stepLog
	name string // the step Check records
	err  error
}

func (f *fakeSessions) Check(_ context.Context, principal, sid, jti string) error {
	f.log.add(f.name)
	if principal == "" || sid == "" || jti == "" {
		return fmt.Errorf("fakeSessions: check without principal, sid or jti")
	}
	return f.err
}

func (f *fakeSessions) Get(_ context.Context, _, sid string) (sessions.Session, error) {
	f.log.add("session.get")
	return sessions.Session{}, fault.New(fault.NotFound, "no session "+sid)
}

// fakeLoop is the loop guard (step 5): "loop", and "loop.refused:<code>"
// for every refusal it is told about.
type fakeLoop struct {
	log   *stepLog
	err   error
	mu    sync.Mutex
	calls []loopguard.Call
}

func (f *fakeLoop) Allow(_ context.Context, c loopguard.Call) error {
	f.log.add("loop")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.err
}

func (f *fakeLoop) Refused(_ context.Context, _ loopguard.Call, code fault.Code) error {
	f.log.add("loop.refused:" + string(code))
	return nil
}

// fakeIdem is idempotency (step 6). With replay set, Begin answers Replay
// with that stored result.
type fakeIdem struct {
	log    *stepLog
	err    error
	replay []byte
	mu     sync.Mutex
	begun  []string // keys
	done   map[string][]byte
}

func (f *fakeIdem) Begin(_ context.Context, principal, tool, key, digest string) (idempotency.Outcome, error) {
	f.log.add("idem.begin")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun = append(f.begun, key)
	if f.err != nil {
		return idempotency.Outcome{}, f.err
	}
	scoped := principal + "|" + tool + "|" + key
	if f.replay != nil {
		return idempotency.Outcome{State: idempotency.Replay, Result: f.replay, Key: scoped}, nil
	}
	return idempotency.Outcome{State: idempotency.Started, Fence: "fence-" + key, Key: scoped}, nil
}

func (f *fakeIdem) Complete(_ context.Context, _, _, key, fence string, result []byte) error {
	f.log.add("idem.complete")
	f.mu.Lock()
	defer f.mu.Unlock()
	if fence != "fence-"+key {
		return fmt.Errorf("fakeIdem: complete with fence %q for key %q", fence, key)
	}
	if f.done == nil {
		f.done = map[string][]byte{}
	}
	f.done[key] = result
	return nil
}

func (f *fakeIdem) Abort(_ context.Context, _, _, key, fence string) error {
	f.log.add("idem.abort")
	if fence != "fence-"+key {
		return fmt.Errorf("fakeIdem: abort with fence %q for key %q", fence, key)
	}
	return nil
}

// UpstreamKey is pure: it records no step.
func (f *fakeIdem) UpstreamKey(ourKey, provider string) string { return provider + ":" + ourKey }

// fakeLedger is the spend ledger (step 8, step 10) and, for the tools that
// show spend, a SpendReader ("spend.status", "spend.budget").
type fakeLedger struct {
	log     *stepLog
	err     error // Hold's refusal
	mu      sync.Mutex
	holds   []spend.HoldRequest
	settled map[string]string // hold id → "commit" or "release"
}

func (f *fakeLedger) Hold(_ context.Context, r spend.HoldRequest) (spend.Hold, error) {
	f.log.add("hold")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return spend.Hold{}, f.err
	}
	f.holds = append(f.holds, r)
	return spend.Hold{ID: r.HoldID, Principal: r.Principal, Provider: r.Provider, Amount: r.Amount}, nil
}

func (f *fakeLedger) Commit(_ context.Context, _, holdID string, _ money.Money) error {
	f.log.add("commit")
	f.settle(holdID, "commit")
	return nil
}

func (f *fakeLedger) Release(_ context.Context, _, holdID, _ string) error {
	f.log.add("release")
	f.settle(holdID, "release")
	return nil
}

func (f *fakeLedger) settle(holdID, how string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settled == nil {
		f.settled = map[string]string{}
	}
	f.settled[holdID] = how
}

func (f *fakeLedger) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.holds)
}

func (f *fakeLedger) Status(_ context.Context, _, provider string) (spend.Status, error) {
	f.log.add("spend.status")
	usd := func(m int64) money.Money { return money.Money{Minor: m, Currency: "usd"} }
	return spend.Status{Provider: provider, Month: "2026-11", Spent: usd(0), Held: usd(0), Cap: usd(10000), Remaining: usd(10000)}, nil
}

func (f *fakeLedger) BudgetStatus(_ context.Context, _, _, _ string, limit money.Money) (money.Money, money.Money, money.Money, error) {
	f.log.add("spend.budget")
	zero := money.Money{Currency: limit.Currency}
	return zero, zero, limit, nil
}

// fakeTenancy resolves every principal to the Cloudflare fake's account
// (step 4b), and an Owned tool's zone to the fake's zone of that name.
type fakeTenancy struct {
	log     *stepLog
	err     error
	client  *cloudflare.Client
	account string
	zones   map[domainname.Name]cloudflare.Zone
}

func (f *fakeTenancy) Resolve(_ context.Context, principal string, zone domainname.Name) (Tenant, error) {
	f.log.add("tenant")
	if f.err != nil {
		return Tenant{}, f.err
	}
	if principal == "" {
		return Tenant{}, fmt.Errorf("fakeTenancy: resolve without a principal")
	}
	t := Tenant{Cloudflare: f.client, AccountID: f.account}
	if z, ok := f.zones[zone]; ok && zone != "" {
		t.Zone = &z
	}
	return t, nil
}

// fakeSealer seals gate state as JSON (no secrecy: the guard's use is
// what is under test, not the seal).
type fakeSealer struct{ log *stepLog }

func (f *fakeSealer) Seal(_ context.Context, st human.State) (string, error) {
	f.log.add("gate.seal")
	b, err := json.Marshal(st)
	return string(b), err
}

func (f *fakeSealer) Open(_ context.Context, token string, want human.Binding) (human.State, error) {
	f.log.add("gate.open")
	var st human.State
	if err := json.Unmarshal([]byte(token), &st); err != nil || st.Binding != want {
		return human.State{}, fault.New(human.StateInvalid, "not this call's state")
	}
	return st, nil
}

// fakeApprovals keeps approvals in memory; every one is approved as soon
// as it is created (the human said yes).
type fakeApprovals struct {
	log *stepLog
	mu  sync.Mutex
	seq int
	all map[string]human.Approval
}

func (f *fakeApprovals) Create(_ context.Context, a human.Approval) (human.Approval, error) {
	f.log.add("gate.approval")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	a.ID = fmt.Sprintf("ap-%d", f.seq)
	a.DecidedBy = "user:alice@example.com"
	if f.all == nil {
		f.all = map[string]human.Approval{}
	}
	f.all[a.ID] = a
	return a, nil
}

func (f *fakeApprovals) Consume(_ context.Context, id string, want human.Binding) (human.Approval, error) {
	f.log.add("gate.consume")
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.all[id]
	if !ok || a.Binding != want {
		return human.Approval{}, fault.New(fault.NotFound, "no approval "+id+" for this call")
	}
	delete(f.all, id)
	return a, nil
}

// fakeConsents remembers nothing: every consent is asked.
type fakeConsents struct{ log *stepLog }

func (f *fakeConsents) Remember(context.Context, string, string, human.Kind, string) error {
	f.log.add("gate.remember")
	return nil
}

func (f *fakeConsents) Has(context.Context, string, string, human.Kind, string) (bool, error) {
	f.log.add("gate.has")
	return false, nil
}

// fakeSecrets is api_token_create's secret store.
type fakeSecrets struct {
	log *stepLog
	mu  sync.Mutex
	all map[string]string
}

func (f *fakeSecrets) HasSecret(_ context.Context, principal, name string) (bool, error) {
	f.log.add("secret.has")
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.all[principal+"/"+name]
	return ok, nil
}

func (f *fakeSecrets) AddSecret(_ context.Context, principal, name, value string) error {
	f.log.add("secret.add")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all == nil {
		f.all = map[string]string{}
	}
	f.all[principal+"/"+name] = value
	return nil
}

// fakeZones is domain_register's ZoneRecorder.
type fakeZones struct{ log *stepLog }

// RecordZoneStep is a step named for the log; fakePhases.Settle logs the
// names of a commit's With steps as it runs them.
func (f *fakeZones) RecordZoneStep(string, Tenant, cloudflare.Zone) fuse.Step {
	return fuse.Step{Name: "zone.record"}
}

var (
	_ Trail         = (*fakeTrail)(nil)
	_ TokenVerifier = (*fakeVerifier)(nil)
	_ SessionReader = (*fakeSessions)(nil)
	_ LoopGuard     = (*fakeLoop)(nil)
	_ Idempotency   = (*fakeIdem)(nil)
	_ SpendReader   = (*fakeLedger)(nil)
	_ Tenancy       = (*fakeTenancy)(nil)
	_ Sealer        = (*fakeSealer)(nil)
	_ ApprovalStore = (*fakeApprovals)(nil)
	_ ConsentStore  = (*fakeConsents)(nil)
	_ SecretStore   = (*fakeSecrets)(nil)
	_ ZoneRecorder  = (*fakeZones)(nil)
)

// fakeLinks is billing_setup's link store: a payment method is on file.
type fakeLinks struct{ log *stepLog }

func (f *fakeLinks) Get(_ context.Context, _, field string) (string, error) {
	f.log.add("links.get")
	if field == LinkStripePaymentMethod {
		return "pm_on_file", nil
	}
	return "", nil
}

var _ Links = (*fakeLinks)(nil)

// settledAs lists how each hold was settled, in hold order.
func (f *fakeLedger) settledAs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for _, h := range f.holds {
		out = append(out, f.settled[h.HoldID])
	}
	return out
}
