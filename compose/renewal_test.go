//go:build !nosandbox

package compose_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestRenewalThroughTheTestClock is the sandbox story: a human
// accepts a subscription; the sandbox's Stripe clock moves 32 days on; the
// fake renews, pays and sends the signed invoice.paid; next month's
// spend_status shows the renewal as spent, and the audit names it.
func TestRenewalThroughTheTestClock(t *testing.T) {
	a, ts := newApp(t)
	billingOnFile(t, a, "alice@example.com")
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "subscription:create spend:read", Details: resources("alice-shop.com")})
	h := &human{action: mcp.ElicitationResponseActionAccept}
	buyer := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok), Elicit: h})
	res, err := call(t, buyer, "subscription_start", map[string]any{"plan": "plan.starter"})
	if err != nil || res.IsError {
		t.Fatalf("subscription_start: %v %s", err, resultJSON(t, res))
	}
	subID, _ := structured(t, res)["subscription_id"].(string)

	resp, err := http.PostForm(ts.URL+"/dev/stripe/advance", url.Values{"days": {"32"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("advance: %d", resp.StatusCode)
	}
	charges := a.FakeStripe().Charges()
	if len(charges) != 2 {
		t.Fatalf("fake charges after 32 days: %+v", charges)
	}
	next := charges[1].Time.UTC().Format("2006-01")
	if next == time.Now().UTC().Format("2006-01") {
		t.Fatalf("the renewal fell in this month (%s)", next)
	}
	res, err = call(t, buyer, "spend_status", map[string]any{"provider": "stripe", "month": next})
	if err != nil || res.IsError {
		t.Fatalf("spend_status: %v %s", err, resultJSON(t, res))
	}
	ps := structured(t, res)["providers"].([]any)[0].(map[string]any)
	spent := ps["spent"].(map[string]any)
	if int64(spent["amount_minor"].(float64)) != charges[1].Amount.Minor {
		t.Fatalf("spend_status for %s: %v, want the renewal %v", next, ps, charges[1].Amount)
	}
	found := false
	for _, e := range readAudit(t, a.Trail(), "user:alice@example.com") {
		if e.Event == "renewal" && e.Detail["subscription"] == subID && e.Detail["human"] == "user:alice@example.com" && e.Detail["agent"] != "" {
			found = true
		}
	}
	if !found || !strings.HasPrefix(subID, "sub_") {
		t.Fatalf("no renewal audit entry for %q", subID)
	}
}
