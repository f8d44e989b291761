package agent_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compose/composetest"

	"github.com/tollgate-dev/tollgate/agent"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// sandbox starts a sandbox tollgate in this process, on the test's own
// Redis database, and returns its base URL.
func sandbox(t *testing.T) string {
	t.Helper()
	_, ts := composetest.Serve(t, testkit.RedisURL(t), nil)
	return ts.URL
}

// counter is a RoundTripper that counts requests by path and status.
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int // "POST /oauth/token 200"
}

func newCounter() *counter { return &counter{base: http.DefaultTransport, n: map[string]int{}} }

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	key := r.Method + " " + r.URL.Path
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[key]++
	if resp != nil {
		c.n[key+" "+http.StatusText(resp.StatusCode)]++
	}
	return resp, err
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) exchanges() int { return c.count("POST /oauth/token") }

func (c *counter) client() *http.Client { return &http.Client{Transport: c, Timeout: 30 * time.Second} }

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// claims decodes a task token's payload (the server verified it; the test
// only reads it).
type claims struct {
	Sub   string `json:"sub"`
	Scope string `json:"scope"`
	Sid   string `json:"sid"`
	Psid  string `json:"parent_sid"`
	Act   *actor `json:"act"`
	AD    []struct {
		Type      string   `json:"type"`
		Domains   []string `json:"domains"`
		Provider  string   `json:"provider"`
		MaxAmount string   `json:"max_amount"`
	} `json:"authorization_details"`
}

type actor struct {
	Sub string `json:"sub"`
	Act *actor `json:"act"`
}

func (c claims) chain() []string {
	var out []string
	for a := c.Act; a != nil; a = a.Act {
		out = append(out, strings.TrimPrefix(a.Sub, "spiffe://tollgate.sandbox/agent/"))
	}
	return out
}

func (c claims) domains() []string {
	for _, d := range c.AD {
		if d.Type == "tollgate:resources" {
			return d.Domains
		}
	}
	return nil
}

func (c claims) budget(provider string) string {
	for _, d := range c.AD {
		if d.Type == "tollgate:spend" && d.Provider == provider {
			return d.MaxAmount
		}
	}
	return "-"
}

func decode(t *testing.T, tok string) claims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// planner is a TokenSource for a fresh human's planner agent with cfg's
// asks, whose exchanges c counts.
func planner(t *testing.T, base string, c *counter, cfg agent.Config) *agent.TokenSource {
	t.Helper()
	cfg.Issuer = base
	if cfg.Actor == nil {
		cfg.Actor = agent.DevAttestor(base, "planner", nil)
	}
	if cfg.Subject == nil {
		cfg.Subject = agent.DevLogin(base, email(t), nil)
	}
	cfg.HTTPClient = c.client()
	ts, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// email is a dev user of the test's own, so tests never share a principal.
func email(t *testing.T) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	return "h-" + strings.Trim(s, "-") + "@example.com"
}
