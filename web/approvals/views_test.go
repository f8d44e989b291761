package approvals

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/gates/human"
)

// TestDetailWordingMatchesItsButtons: for every kind of gate, the page
// promises what Approve does only when it shows an Approve button (a billing
// or sign-in gate completes at the provider, so it has none), always says
// what Deny does, and names who asks before what and the money.
func TestDetailWordingMatchesItsButtons(t *testing.T) {
	v := newViews()
	kinds := []human.Kind{human.Purchase, human.Production, human.Terms, human.CapRaise, human.Billing, human.Authentication}
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			ap := human.Approval{ID: "ap1", Kind: k, Summary: "asked", Status: human.StatusPending,
				Created: time.Unix(0, 0), Expires: time.Unix(600, 0),
				Fields: map[string]string{
					"price": "50.00 USD", "domain": "shop.example", "human": "user:alice@example.com",
					"agent_chain": "spiffe://tollgate.sandbox/agent/planner → spiffe://tollgate.sandbox/agent/buyer",
				}}
			w := httptest.NewRecorder()
			v.render(w, http.StatusOK, "detail", detailView{Title: "Approval", Principal: "user:alice@example.com",
				CSRF: "x", Approval: ap, Sections: fieldSections(ap.Fields), Wording: wording(k)})
			page := w.Body.String()
			if w.Code != http.StatusOK {
				t.Fatalf("render: %d %s", w.Code, page)
			}
			button := strings.Contains(page, `value="approve"`)
			if button == k.URLMode() {
				t.Errorf("Approve button shown: %v, for a gate answered at the provider: %v", button, k.URLMode())
			}
			if promises := strings.Contains(page, "Approve "); promises != button {
				t.Errorf("the page says what Approve does (%v) but shows an Approve button (%v):\n%s", promises, button, page)
			}
			if d := wording(k).Deny; !strings.HasPrefix(d, "Deny ") || !strings.Contains(page, d) {
				t.Errorf("the page does not say what Deny does:\n%s", page)
			}
			who, chain := strings.Index(page, "user:alice@example.com</td>"), strings.Index(page, "agent/planner → spiffe://tollgate.sandbox/agent/buyer")
			what, money := strings.Index(page, "shop.example"), strings.Index(page, "50.00 USD")
			if who < 0 || chain < who || what < chain || money < what {
				t.Errorf("who (%d), the agent chain (%d), what (%d), the money (%d) are not shown in that order:\n%s", who, chain, what, money, page)
			}
		})
	}
}
