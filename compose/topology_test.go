//go:build !nosandbox

package compose_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestPaidCallOverRedisTopologies: tollgate connects, with --redis-url and
// --redis-ca as an operator writes them, to a TLS redis-server (with a
// password, CA made by the test) and to a 3-master Redis Cluster, plain
// and over TLS, and makes a paid call through each: the hold, the charge
// and the commit land once, /readyz says ready and the state gauges read
// every master.
func TestPaidCallOverRedisTopologies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) (string, testkit.TestCA)
	}{
		{"tls", testkit.StartTLSRedis},
		{"cluster", func(t testing.TB) (string, testkit.TestCA) { return testkit.StartCluster3(t, false) }},
		{"cluster tls", func(t testing.TB) (string, testkit.TestCA) { return testkit.StartCluster3(t, true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, ca := tc.start(t)
			a, ts := newAppWith(t, func(c *config.Config) { c.RedisURL, c.RedisCA = url, ca.CAFile })
			acct := a.LinkTestAccount(t, alicePrincipal)
			c := paidClient(t, ts.URL, resources("topology-demo.com"))
			res, err := call(t, c, "domain_register", map[string]any{"domain": "topology-demo.com"})
			if err != nil || res.IsError {
				t.Fatalf("domain_register over %s: %v %+v", tc.name, err, structured(t, res))
			}
			if out := structured(t, res); out["status"] != "registered" || out["account_id"] != acct {
				t.Fatalf("register result %v", out)
			}
			// A retry replays: still one charge.
			if res, _ = call(t, c, "domain_register", map[string]any{"domain": "topology-demo.com"}); res.IsError {
				t.Fatalf("replay: %+v", structured(t, res))
			}
			if charges := a.FakeCloudflare().Charges(); len(charges) != 1 || charges[0].Account != acct {
				t.Fatalf("charges %+v, want 1 in %s", charges, acct)
			}
			resp, err := http.Get(ts.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/readyz over %s: %d", tc.name, resp.StatusCode)
			}
			body := scrape(t, ts.URL)
			for _, want := range []string{`tollgate_holds{state="held"} 0`, `tollgate_approvals_pending 0`,
				`tollgate_state_read_errors_total{gauge="holds"} 0`, `tollgate_state_read_errors_total{gauge="approvals"} 0`,
				`tollgate_tool_calls_total{code="",outcome="ok",tool="domain_register"} 1`} {
				if !strings.Contains(body, want+"\n") {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
}
