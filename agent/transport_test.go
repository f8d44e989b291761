package agent_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/agent"
)

// connect starts an mcp-go Streamable HTTP client on ts's HTTP client.
func connect(t *testing.T, base string, hc *http.Client) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(base+"/mcp", transport.WithHTTPBasicClient(hc), transport.WithHTTPTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "agent-test", Version: "0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	return c
}

func whoami(t *testing.T, c *client.Client) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := res.StructuredContent.(map[string]any)
	if res.IsError || m == nil {
		t.Fatalf("whoami: %+v", res)
	}
	return m
}

// TestMCPClientCarriesTheTaskToken: mcp-go's client on HTTPClient reaches
// tollgate as the agent, for the human.
func TestMCPClientCarriesTheTaskToken(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	mc := connect(t, base, ts.HTTPClient())
	who := whoami(t, mc)
	if who["principal"] != "user:"+email(t) {
		t.Fatalf("whoami: %v", who)
	}
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges, want 1", c.exchanges())
	}
}

// TestRetryOn401Once: a token the server no longer accepts gets one
// re-exchange and one retry, with the same body; the call succeeds.
func TestRetryOn401Once(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	mcpCalls := newCounter()
	mc := connect(t, base, &http.Client{Transport: &agent.Transport{Source: ts, Base: mcpCalls}})
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges, want 1", c.exchanges())
	}
	agent.Spoil(ts) // as if the server's keys had changed under the token
	before401 := mcpCalls.count("POST /mcp Unauthorized")
	who := whoami(t, mc)
	if who["principal"] != "user:"+email(t) {
		t.Fatalf("whoami after the retry: %v", who)
	}
	if got := mcpCalls.count("POST /mcp Unauthorized") - before401; got != 1 {
		t.Fatalf("%d 401s, want 1", got)
	}
	if c.exchanges() != 2 {
		t.Fatalf("%d exchanges, want 2 (one re-exchange)", c.exchanges())
	}

	// Many calls refused with one stale token cause one re-exchange.
	agent.Spoil(ts)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name = "whoami"
			if res, err := mc.CallTool(ctx, req); err != nil || res.IsError {
				t.Errorf("concurrent whoami after a stale token: %v", err)
			}
		}()
	}
	wg.Wait()
	if c.exchanges() != 3 {
		t.Fatalf("%d exchanges, want 3: 8 concurrent 401s on one stale token make one re-exchange", c.exchanges())
	}
}

// TestRetryOn401AtMostOnce: a server that refuses every token gets the
// request twice, never more, and the caller gets its 401.
func TestRetryOn401AtMostOnce(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	var hits atomic.Int32
	var bodies []string
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("no bearer token")
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer refuse.Close()
	hc := &http.Client{Transport: &agent.Transport{Source: ts, Origin: refuse.URL}}
	resp, err := hc.Post(refuse.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || hits.Load() != 2 || c.exchanges() != 2 {
		t.Fatalf("status %d after %d attempts and %d exchanges; want 401, 2, 2", resp.StatusCode, hits.Load(), c.exchanges())
	}
	if bodies[0] != bodies[1] || bodies[1] == "" {
		t.Fatalf("the retry's body differs: %q vs %q", bodies[0], bodies[1])
	}

	// A body that cannot be replayed is sent once.
	hits.Store(0)
	req, _ := http.NewRequest("POST", refuse.URL, io.NopCloser(strings.NewReader("once")))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || hits.Load() != 1 {
		t.Fatalf("status %d after %d attempts; want 401 after 1", resp.StatusCode, hits.Load())
	}
}

// TestRevokedSessionStops: once the human's task session is revoked, the
// transport does not resurrect it with a new exchange: the request fails
// with SessionRevoked, and so does every later Token.
func TestRevokedSessionStops(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	// The human (or anyone holding the token) revokes the task (RFC 7009).
	resp, err := http.PostForm(base+"/oauth/revoke", url.Values{"token": {tok.AccessToken}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	// tools/list is checked at the HTTP edge, which answers 401.
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", mcp.LATEST_PROTOCOL_VERSION)
	_, err = ts.HTTPClient().Do(req)
	if !errors.Is(err, agent.SessionRevoked) {
		t.Fatalf("got %v, want session_revoked", err)
	}
	if _, err := ts.Token(); !errors.Is(err, agent.SessionRevoked) {
		t.Fatalf("Token after revocation: %v", err)
	}
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges, want 1: a revoked task is not exchanged again", c.exchanges())
	}
}

// TestRevokeEndsTheTaskAndItsSubAgents: Revoke revokes the session (and
// the sub-agent's with it) and stops both TokenSources.
func TestRevokeEndsTheTaskAndItsSubAgents(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	child, err := ts.Delegate(context.Background(), agent.Delegation{Actor: agent.DevAttestor(base, "deployer", nil)})
	if err != nil {
		t.Fatal(err)
	}
	mc := connect(t, base, child.HTTPClient())
	if who := whoami(t, mc); !slices.Equal(anyStrings(who["actors"]), []string{"spiffe://tollgate.sandbox/agent/deployer", "spiffe://tollgate.sandbox/agent/planner"}) {
		t.Fatalf("the sub-agent's whoami: %v", who)
	}
	if err := ts.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, agent.SessionRevoked) {
		t.Fatalf("parent Token after Revoke: %v", err)
	}
	// The sub-agent's session went with its parent's: its next tool call
	// is refused by the guard.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := mc.CallTool(ctx, req)
	if err == nil && !res.IsError {
		t.Fatalf("the sub-agent's call succeeded after its parent's task was revoked")
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestRevokeDuringAnExchange: a task revoked while its first exchange is
// under way gets no token, and the session that exchange opened is revoked
// rather than left active.
func TestRevokeDuringAnExchange(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	dev := agent.DevAttestor(base, "planner", nil)
	started, release := make(chan struct{}), make(chan struct{})
	slow := agent.AttestorFunc(func(ctx context.Context) (string, error) {
		close(started)
		<-release
		return dev.Attestation(ctx)
	})
	ts := planner(t, base, c, agent.Config{Actor: slow, Scope: []string{"catalog:read"}})
	got := make(chan error, 1)
	go func() { _, err := ts.Token(); got <- err }()
	<-started // the exchange is under way, waiting on the attestor
	if err := ts.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-got; !errors.Is(err, agent.SessionRevoked) {
		t.Fatalf("Token during Revoke: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.count("POST /oauth/revoke OK") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the session opened during Revoke was not revoked (exchanges %d)", c.exchanges())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.exchanges() != 1 {
		t.Fatalf("%d exchanges, want 1", c.exchanges())
	}
}

// TestTokenGoesOnlyToTheIssuer: the bearer token is never sent to another
// origin, neither directly nor by following a redirect.
func TestTokenGoesOnlyToTheIssuer(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	ts := planner(t, base, c, agent.Config{Scope: []string{"catalog:read"}})
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	defer elsewhere.Close()
	hc := ts.HTTPClient()
	if _, err := hc.Get(elsewhere.URL); !errors.Is(err, agent.Misconfigured) {
		t.Fatalf("a request to another origin: %v", err)
	}
	// The token's origin redirecting elsewhere: the redirect is refused.
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusFound))
	defer redirect.Close()
	rc := &http.Client{Transport: &agent.Transport{Source: ts, Origin: redirect.URL}}
	if _, err := rc.Get(redirect.URL); !errors.Is(err, agent.Misconfigured) {
		t.Fatalf("a redirect to another origin: %v", err)
	}
	if leaked.Load() != 0 {
		t.Fatalf("the token reached another origin %d times", leaked.Load())
	}
}
