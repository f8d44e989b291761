package approvals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/sessions"
)

// fakeStore records every call and holds approvals by id.
type fakeStore struct {
	mu      sync.Mutex
	byID    map[string]human.Approval
	decided []string // "id|principal|approve"
}

func (s *fakeStore) List(_ context.Context, principal string, _ bool) ([]human.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []human.Approval
	for _, a := range s.byID {
		if a.Binding.Principal == principal {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *fakeStore) Get(_ context.Context, id string) (human.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok {
		return human.Approval{}, fault.New(fault.NotFound, "no such approval")
	}
	return a, nil
}

func (s *fakeStore) Decide(_ context.Context, id, principal string, approve bool, _ string) (human.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byID[id]
	v := "deny"
	if approve {
		v, a.Status = "approve", human.StatusApproved
	} else {
		a.Status = human.StatusDenied
	}
	s.decided = append(s.decided, id+"|"+principal+"|"+v)
	return a, nil
}

type fakeSecrets struct{ err error }

func (f fakeSecrets) Get(_ context.Context, n sharedsecret.Name) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []byte(strings.Repeat("k", 32) + string(n)), nil
}

type fakeStates struct{}

func (fakeStates) Save(context.Context, string, flowstate.Record) error { return nil }
func (fakeStates) Take(context.Context, string) (flowstate.Record, error) {
	return flowstate.Record{}, fault.New(fault.NotFound, "no flow")
}

type fakeTrail struct {
	mu      sync.Mutex
	entries []sessions.Entry
}

func (t *fakeTrail) Append(_ context.Context, e sessions.Entry) (sessions.Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = append(t.entries, e)
	return e, nil
}

type harness struct {
	page  *Page
	store *fakeStore
	trail *fakeTrail
	now   time.Time
}

func newHarness(t *testing.T, secrets Secrets) *harness {
	t.Helper()
	h := &harness{now: time.Unix(1_800_000_000, 0), trail: &fakeTrail{}, store: &fakeStore{byID: map[string]human.Approval{
		"ap-alice": {ID: "ap-alice", Kind: human.Purchase, Status: human.StatusPending, Binding: human.Binding{Principal: "user:alice@example.com"}},
		"ap-bob":   {ID: "ap-bob", Kind: human.Purchase, Status: human.StatusPending, Binding: human.Binding{Principal: "user:bob@example.com"}},
	}}}
	p, err := New(Config{PublicURL: "https://tollgate.example", Approvals: h.store, Secrets: secrets, States: fakeStates{},
		Trail: h.trail, Now: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	h.page = p
	return h
}

// cookie is a page session cookie for principal, sealed under the page's key.
func (h *harness) cookie(t *testing.T, principal, id string, expires time.Time) *http.Cookie {
	t.Helper()
	k, err := h.page.loadKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: approvalsCookie, Value: k.seal(pageSession{principal: principal, expires: expires, id: id})}
}

func (h *harness) csrf(t *testing.T, bound string) string {
	t.Helper()
	k, err := h.page.loadKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k.csrf.Token(bound, h.now)
}

func (h *harness) serve(r *http.Request) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	h.page.Mount(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

func decideRequest(id, csrf, decision string, c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://tollgate.example/approvals/"+id,
		strings.NewReader(url.Values{"csrf": {csrf}, "decision": {decision}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

// TestDecideAttacks: a decision needs this session's cookie and a CSRF
// token bound to it and to the approval, and the approval must be the
// signed-in principal's. Nothing else reaches the store.
func TestDecideAttacks(t *testing.T) {
	const alice, sid = "user:alice@example.com", "session-1"
	for _, tc := range []struct {
		name   string
		req    func(h *harness) *http.Request
		status int
		// decided is what must have reached the store's Decide.
		decided []string
	}{
		{"signed-in owner approves", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, sid+"|ap-alice"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusOK, []string{"ap-alice|" + alice + "|approve"}},
		{"no cookie", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, sid+"|ap-alice"), "approve", nil)
		}, http.StatusForbidden, nil},
		{"expired cookie", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, sid+"|ap-alice"), "approve", h.cookie(t, alice, sid, h.now.Add(-time.Second)))
		}, http.StatusForbidden, nil},
		{"cookie with a forged principal", func(h *harness) *http.Request {
			c := h.cookie(t, alice, sid, h.now.Add(time.Hour))
			parts := strings.Split(c.Value, "|")
			parts[0] = "dXNlcjpib2JAZXhhbXBsZS5jb20" // user:bob@example.com
			c.Value = strings.Join(parts, "|")
			return decideRequest("ap-bob", h.csrf(t, sid+"|ap-bob"), "approve", c)
		}, http.StatusForbidden, nil},
		{"csrf token of another approval", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, sid+"|ap-other"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusForbidden, nil},
		{"csrf token of another session", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, "session-2|ap-alice"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusForbidden, nil},
		{"another principal's approval is not found", func(h *harness) *http.Request {
			return decideRequest("ap-bob", h.csrf(t, sid+"|ap-bob"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusNotFound, nil},
		{"unknown approval is the same not found", func(h *harness) *http.Request {
			return decideRequest("ap-none", h.csrf(t, sid+"|ap-none"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusNotFound, nil},
		{"decision that is neither", func(h *harness) *http.Request {
			return decideRequest("ap-alice", h.csrf(t, sid+"|ap-alice"), "maybe", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
		}, http.StatusBadRequest, nil},
		{"cross-site post", func(h *harness) *http.Request {
			r := decideRequest("ap-alice", h.csrf(t, sid+"|ap-alice"), "approve", h.cookie(t, alice, sid, h.now.Add(time.Hour)))
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, http.StatusForbidden, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakeSecrets{})
			w := h.serve(tc.req(h))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if strings.Join(h.store.decided, ",") != strings.Join(tc.decided, ",") {
				t.Fatalf("store decided %v, want %v", h.store.decided, tc.decided)
			}
			if len(h.trail.entries) != len(tc.decided) {
				t.Fatalf("%d audit entries for %d decisions", len(h.trail.entries), len(tc.decided))
			}
			if got := w.Header().Get("X-Frame-Options"); got != "DENY" {
				t.Fatalf("X-Frame-Options %q on a %d", got, w.Code)
			}
		})
	}
}

// TestKeysUnavailableFailsClosed: without the shared secret nobody is
// signed in, and the page says the store is unavailable.
func TestKeysUnavailableFailsClosed(t *testing.T) {
	h := newHarness(t, fakeSecrets{err: fault.New(fault.Unavailable, "redis down")})
	r := httptest.NewRequest(http.MethodGet, "https://tollgate.example/approvals", nil)
	if w := h.serve(r); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	w := httptest.NewRecorder()
	if _, ok := h.page.SignedIn(w, r); ok {
		t.Fatal("signed in without keys")
	}
}

// TestSafeNext: a sign-in only ever sends the browser back into the page.
func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/approvals/ap-1", "/approvals/ap-1"},
		{"/approvals", "/approvals"},
		{"", Path},
		{"https://evil.example/approvals", Path},
		{"//evil.example/approvals", Path},
		{"/\\evil.example", Path},
		{"/approvals/../oauth/token", Path},
		{"/approvals/x?next=//evil", Path},
		{"/approvalsx", Path},
		{"/approvals/\x00", Path},
		{"/approvals/" + strings.Repeat("a", 600), Path},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNewNeedsItsStores: a page without its stores is refused at build
// time, not at the first request.
func TestNewNeedsItsStores(t *testing.T) {
	if _, err := New(Config{Approvals: &fakeStore{}, Secrets: fakeSecrets{}, States: fakeStates{}}); err == nil {
		t.Fatal("a page without a trail was built")
	}
}

// TestDecisionEntryIsOneLine: what an agent wrote in the summary cannot
// add lines to the audit trail.
func TestDecisionEntryIsOneLine(t *testing.T) {
	ap := human.Approval{ID: "ap-1", Kind: human.Purchase, Status: human.StatusApproved, Summary: "buy\nexample.com\x1b[31m",
		Binding: human.Binding{Principal: "user:alice@example.com"}, Fields: map[string]string{"domain": "a\nb"}}
	e := DecisionEntry(ap, "page:user:alice@example.com")
	if e.Decision != sessions.DecisionAllow || e.Principal != ap.Binding.Principal {
		t.Fatalf("entry %+v", e)
	}
	for k, v := range e.Detail {
		if strings.ContainsAny(v, "\n\x1b") {
			t.Fatalf("detail %s = %q has a control character", k, v)
		}
	}
}
