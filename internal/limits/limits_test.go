package limits

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

func TestInFlightPerPrincipalAndSession(t *testing.T) {
	l := NewInFlight(3, 2, time.Second)
	r1, err := l.Acquire("alice", "s1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Acquire("alice", "s1")
	if err != nil {
		t.Fatal(err)
	}
	// The session is full; another of alice's sessions is not.
	if _, err := l.Acquire("alice", "s1"); fault.CodeOf(refusalFault(err)) != TooMany {
		t.Fatalf("third call of one session: %v, want too_many_requests", err)
	}
	r3, err := l.Acquire("alice", "s2")
	if err != nil {
		t.Fatal(err)
	}
	// alice is full; bob is not affected.
	if _, err := l.Acquire("alice", "s3"); err == nil {
		t.Fatal("fourth call of alice was admitted past --inflight-per-principal 3")
	}
	rb, err := l.Acquire("bob", "s1")
	if err != nil {
		t.Fatalf("bob refused because of alice: %v", err)
	}
	// Releasing twice gives back one slot only.
	r1()
	r1()
	if _, err := l.Acquire("alice", "s3"); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.Acquire("alice", "s4"); err == nil {
		t.Fatal("a double release gave back two slots")
	}
	r2()
	r3()
	rb()
	var ref *Refusal
	_, err = NewInFlight(1, 1, 3*time.Second).acquireTwice()
	if !errors.As(err, &ref) || ref.After != 3*time.Second {
		t.Fatalf("refusal %v has no retry delay of 3s", err)
	}
}

func (l *InFlight) acquireTwice() (func(), error) {
	if _, err := l.Acquire("p", "s"); err != nil {
		return nil, err
	}
	return l.Acquire("p", "s")
}

func TestInFlightForgetsIdleKeys(t *testing.T) {
	l := NewInFlight(5, 5, time.Second)
	for i := 0; i < 1000; i++ {
		r, err := l.Acquire("p"+string(rune('a'+i%26)), "s")
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byPrinc) != 0 || len(l.bySess) != 0 {
		t.Fatalf("memory kept after every release: %d principals, %d sessions", len(l.byPrinc), len(l.bySess))
	}
}

func TestInFlightConcurrent(t *testing.T) {
	l := NewInFlight(4, 4, time.Second)
	var mu sync.Mutex
	in, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Acquire("p", "s")
			if err != nil {
				return
			}
			mu.Lock()
			in++
			peak = max(peak, in)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			in--
			mu.Unlock()
			r()
		}()
	}
	wg.Wait()
	if peak > 4 || peak == 0 {
		t.Fatalf("peak in flight %d, want 1..4", peak)
	}
}

func refusalFault(err error) error {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Fault()
	}
	return err
}

type memTrail struct {
	mu sync.Mutex
	es []sessions.Entry
}

func (m *memTrail) Append(_ context.Context, e sessions.Entry) (sessions.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.es = append(m.es, e)
	return e, nil
}

func (m *memTrail) entries() []sessions.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sessions.Entry(nil), m.es...)
}

func TestCoalescerCountsRepeatedRefusals(t *testing.T) {
	tr := &memTrail{}
	c := NewCoalescer(tr, time.Hour, 100, nil)
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c.mu.Lock()
	c.now = func() time.Time { return clock }
	c.mu.Unlock()
	ctx := context.Background()
	deny := sessions.Entry{Event: "tool_call", Tool: "dns_record_set", Decision: sessions.DecisionDeny, Code: "insufficient_scope",
		Principal: "user:alice", Session: "s1", Detail: map[string]string{"at": "http edge"}}
	for i := 0; i < 10000; i++ {
		if _, err := c.Append(ctx, deny); err != nil {
			t.Fatal(err)
		}
	}
	allow := sessions.Entry{Event: "tool_call", Tool: "whoami", Decision: sessions.DecisionAllow, Principal: "user:alice"}
	c.Append(ctx, allow)
	c.Append(ctx, allow)
	other := deny
	other.Code = "loop_detected"
	c.Append(ctx, other)
	if n := len(tr.entries()); n != 4 {
		t.Fatalf("%d entries before the window closes, want 4 (first refusal, 2 allowed, another code)", n)
	}
	// The window closes: the next identical refusal first writes the count.
	clock = clock.Add(2 * time.Hour)
	c.Append(ctx, deny)
	es := tr.entries()
	if len(es) != 6 {
		t.Fatalf("%d entries, want 6", len(es))
	}
	if es[4].Detail["repeated"] != "9999" || es[4].Code != "insufficient_scope" || es[4].Detail["at"] != "http edge" {
		t.Fatalf("counted entry %+v, want repeated=9999 of the same refusal", es[4])
	}
	if es[5].Detail["repeated"] != "" {
		t.Fatalf("the new window's first refusal is counted: %+v", es[5])
	}
	// Close writes what is still open: "other" repeated 0 times writes nothing.
	c.Append(ctx, deny)
	c.Close()
	es = tr.entries()
	if len(es) != 7 || es[6].Detail["repeated"] != "1" {
		t.Fatalf("after Close: %d entries, last %+v; want the open count of 1", len(es), es[len(es)-1])
	}
}

func TestCoalescerBoundedWindows(t *testing.T) {
	tr := &memTrail{}
	c := NewCoalescer(tr, time.Hour, 2, nil)
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		e := sessions.Entry{Decision: sessions.DecisionDeny, Code: "x", Principal: "p", Tool: string(rune('a' + i))}
		c.Append(ctx, e)
		c.Append(ctx, e)
	}
	// Two windows coalesce (2 entries); three more kinds are appended one by one (6).
	if n := len(tr.entries()); n != 8 {
		t.Fatalf("%d entries, want 8", n)
	}
	c.mu.Lock()
	open := len(c.open)
	c.mu.Unlock()
	if open != 2 {
		t.Fatalf("%d open windows, want at most 2", open)
	}
}

// TestCoalescerBoundsOnePrincipal: refusals that vary (another tool, other
// arguments) each time are still bounded per principal: past PerPrincipal
// in a window they are counted into one entry.
func TestCoalescerBoundsOnePrincipal(t *testing.T) {
	tr := &memTrail{}
	c := NewCoalescer(tr, time.Hour, 100000, nil)
	c.PerPrincipal = 10
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		c.Append(ctx, sessions.Entry{Decision: sessions.DecisionDeny, Code: "not_found", Principal: "user:mallory", Tool: "probe",
			ArgsDigest: string(rune(0x4e00 + i))})
	}
	// Another principal is not affected by mallory's volume.
	c.Append(ctx, sessions.Entry{Decision: sessions.DecisionDeny, Code: "not_found", Principal: "user:alice", Tool: "probe"})
	if n := len(tr.entries()); n != 11 {
		t.Fatalf("%d entries while the window is open, want 10 of mallory's and 1 of alice's", n)
	}
	c.Close()
	es := tr.entries()
	last := es[len(es)-1]
	if len(es) != 12 || last.Detail["coalesced"] != "principal" || last.Detail["repeated"] != "9990" || last.Principal != "user:mallory" {
		t.Fatalf("after Close: %d entries, last %+v; want one count of mallory's other 9990", len(es), last)
	}
}
