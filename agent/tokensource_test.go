package agent_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/agent"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestExchangeOnceForConcurrentCalls: N goroutines asking a fresh
// TokenSource at once cause one exchange and all get its token, which
// holds what was asked.
func TestExchangeOnceForConcurrentCalls(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{
		Scope:     []string{"catalog:read", "dns:read"},
		Resources: []string{"shop.example"},
		Budgets:   []agent.Budget{{Provider: "cloudflare", Amount: "20.00", Currency: "usd"}},
	})
	const n = 32
	toks := make([]*oauth2.Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			toks[i], errs[i] = ts.Token()
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if toks[i].AccessToken != toks[0].AccessToken {
			t.Fatalf("call %d got a different token", i)
		}
	}
	if got := c.exchanges(); got != 1 {
		t.Fatalf("%d exchanges for %d concurrent calls, want 1", got, n)
	}
	// Cached: more calls, no more exchanges.
	for range 10 {
		if tok, err := ts.Token(); err != nil || tok.AccessToken != toks[0].AccessToken {
			t.Fatalf("cached call: %v", err)
		}
	}
	if got := c.exchanges(); got != 1 {
		t.Fatalf("%d exchanges after cached calls, want 1", got)
	}

	g := agent.GrantOf(toks[0])
	if !slices.Equal(g.Scope, []string{"catalog:read", "dns:read"}) || g.SessionID == "" {
		t.Fatalf("grant = %+v", g)
	}
	cl := decode(t, toks[0].AccessToken)
	if cl.Sub != "user:"+email(t) || !slices.Equal(cl.chain(), []string{"planner"}) || cl.Sid != g.SessionID ||
		!slices.Equal(cl.domains(), []string{"shop.example"}) || cl.budget("cloudflare") != "20.00" || cl.budget("stripe") != "-" {
		t.Fatalf("issued token: %+v", cl)
	}
	if ttl := time.Until(toks[0].Expiry); ttl < 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("expiry in %s, want the server's 10m", ttl)
	}
}

// TestRefreshBeforeExpiry: the token is kept until RefreshBefore (plus
// jitter) before its expiry, then exchanged again, once for all callers;
// a token past its usable life is never handed out.
func TestRefreshBeforeExpiry(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	clk := newClock()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}, Clock: clk.now, RefreshBefore: 2 * time.Minute, Jitter: 30 * time.Second})
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	// 10m tokens: refresh falls between 7m30s and 8m after issue.
	clk.advance(7*time.Minute + 29*time.Second)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("before the refresh window: new token or %v", err)
	}
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges before the refresh window, want 1", c.exchanges())
	}
	clk.advance(31 * time.Second)
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := ts.Token(); err == nil {
				got[i] = tok.AccessToken
			}
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g == "" || g == first.AccessToken {
			t.Fatalf("call %d in the refresh window did not get a new token", i)
		}
		if g != got[0] {
			t.Fatalf("calls in the refresh window got different tokens")
		}
	}
	if c.exchanges() != 2 {
		t.Fatalf("%d exchanges, want 2 (one refresh for 16 callers)", c.exchanges())
	}
	// A refresh keeps the task session, and with it the budget: an agent
	// that refreshes does not start a new task.
	if a, b := agent.GrantOf(first).SessionID, decode(t, got[0]).Sid; a != b {
		t.Fatalf("the refreshed token is of session %s, not the task's %s", b, a)
	}
}

// TestRefreshJitterSpreads: with jitter, the refresh time is random within
// [RefreshBefore, RefreshBefore+Jitter] before expiry.
func TestRefreshJitterSpreads(t *testing.T) {
	base := sandbox(t)
	seen := map[bool]int{}
	for i := range 6 {
		c := newCounter()
		clk := newClock()
		ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}, Clock: clk.now, RefreshBefore: time.Minute, Jitter: 2 * time.Minute})
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
		clk.advance(7*time.Minute - time.Second) // before the earliest refresh (10m - 1m - 2m)
		_, _ = ts.Token()
		if c.exchanges() != 1 {
			t.Fatalf("run %d: refreshed before RefreshBefore+Jitter", i)
		}
		clk.advance(time.Minute + 30*time.Second) // 8m29s: inside the jitter window
		_, _ = ts.Token()
		seen[c.exchanges() == 2]++
		clk.advance(31 * time.Second) // 9m: past the latest refresh
		_, _ = ts.Token()
		if c.exchanges() < 2 {
			t.Fatalf("run %d: not refreshed by RefreshBefore before expiry", i)
		}
	}
	t.Logf("refreshed inside the jitter window: %v", seen)
}

// TestRefusedExchangeIsTypedAndNotRepeated: the server's OAuth error
// comes back as an *Error with its code, description and remedy, and an
// immediate second call reports it again without a second request.
func TestRefusedExchangeIsTypedAndNotRepeated(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read", "root:everything"}})
	_, err := ts.Token()
	var e *agent.Error
	if !errors.As(err, &e) || !errors.Is(err, agent.InvalidScope) || e.Status != 400 || e.Op != "exchange" {
		t.Fatalf("got %v, want invalid_scope", err)
	}
	if !strings.Contains(e.Description, "unknown scope root:everything") || e.Remedy() == "" || !strings.Contains(err.Error(), e.Remedy()) {
		t.Fatalf("error does not say what and what to do: %v", err)
	}
	if _, err2 := ts.Token(); !errors.Is(err2, agent.InvalidScope) {
		t.Fatalf("second call: %v", err2)
	}
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges, want 1: a refused request is not sent again at once", c.exchanges())
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("the error carries a token: %v", err)
	}
}

// TestSelfMode: with no Subject the agent exchanges its own attestation
// and acts as its own principal.
func TestSelfMode(t *testing.T) {
	base := sandbox(t)
	ts, err := agent.New(agent.Config{Issuer: base, Actor: agent.DevAttestor(base, "solo", nil), Scope: []string{"catalog:read"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if cl := decode(t, tok.AccessToken); cl.Sub != "spiffe://tollgate.sandbox/agent/solo" || cl.Act != nil {
		t.Fatalf("self-mode token: %+v", cl)
	}
}

// TestJWTFileAttestation: a workload token in a file is the actor.
func TestJWTFileAttestation(t *testing.T) {
	base := sandbox(t)
	p := filepath.Join(t.TempDir(), "agent.jwt")
	if err := os.WriteFile(p, []byte(testkit.DevAgentToken(t, base, "filebound")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := planner(t, base, newCounter(), agent.Config{Actor: agent.JWTFile(p), Scope: []string{"catalog:read"}})
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if cl := decode(t, tok.AccessToken); !slices.Equal(cl.chain(), []string{"filebound"}) {
		t.Fatalf("chain %v, want [filebound]", cl.chain())
	}
}

// TestExchangeFollowsNoRedirect: a token endpoint that redirects (307
// would resend the form with both tokens) is not followed.
func TestExchangeFollowsNoRedirect(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked.Add(1) }))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/oauth/token", http.StatusTemporaryRedirect))
	defer redirect.Close()
	ts, err := agent.New(agent.Config{Issuer: redirect.URL, Actor: agent.AttestorFunc(func(context.Context) (string, error) { return "attestation", nil }),
		Subject: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "human"})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, agent.BadResponse) {
		t.Fatalf("got %v, want bad_response", err)
	}
	if leaked.Load() != 0 {
		t.Fatalf("the exchange followed the redirect")
	}
}
