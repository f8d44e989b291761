//go:build !nosandbox

package compose_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	gates "github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// TestMetricsStateGauges: tollgate_holds{state} and
// tollgate_approvals_pending count what the stores hold after a known
// sequence (two holds, one committed; three approvals, one denied), with
// no principal or e-mail in any line.
func TestMetricsStateGauges(t *testing.T) {
	a, ts := newApp(t)
	storyHoldsAndApprovals(t, a.Ledger(), a.Approvals())
	body := scrape(t, ts.URL)
	for _, want := range []string{
		`tollgate_holds{state="held"} 1`,
		`tollgate_holds{state="expired"} 0`,
		`tollgate_approvals_pending 2`,
		`tollgate_state_truncated{gauge="holds"} 0`,
		`tollgate_state_truncated{gauge="approvals"} 0`,
		`tollgate_state_read_errors_total{gauge="holds"} 0`,
		`tollgate_state_read_errors_total{gauge="approvals"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "tollgate_") && (strings.Contains(line, "alice") || strings.Contains(line, "bob") || strings.Contains(line, "example.com")) {
			t.Errorf("a metric line names a principal: %s", line)
		}
	}
}

// storyHoldsAndApprovals leaves one held hold (alice's; bob's is
// committed) and two pending approvals (alice's second one is denied).
func storyHoldsAndApprovals(t *testing.T, l *spend.Ledger, ap *gates.Approvals) {
	t.Helper()
	ctx := context.Background()
	const alice, bob = "user:alice@example.com", "user:bob@example.com"
	if _, err := l.Hold(ctx, spend.HoldRequest{HoldID: "h-alice", Principal: alice, Provider: spend.Cloudflare, Amount: money.USD(100), Tool: "domain_register"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Hold(ctx, spend.HoldRequest{HoldID: "h-bob", Principal: bob, Provider: spend.Cloudflare, Amount: money.USD(200), Tool: "domain_register"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, bob, "h-bob", money.USD(200)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range []string{alice, alice, bob} {
		got, err := ap.Create(ctx, gates.Approval{Binding: gates.Binding{Principal: p, Session: "s1", Tool: "deploy_promote", ArgsDigest: "d" + p[5:8]},
			Kind: gates.Production, Summary: "promote"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	if _, err := ap.Decide(ctx, ids[1], alice, false, "test"); err != nil {
		t.Fatal(err)
	}
}

// scrape is the body of GET /metrics.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
