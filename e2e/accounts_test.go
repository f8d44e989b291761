package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// humanPlays is the script's answer to every question the server asks
// email: approve a form gate, complete a URL-mode gate in the browser as
// email (Stripe Checkout, Cloudflare's consent page).
func humanPlays(email string) map[string]any {
	return map[string]any{
		"action":   "accept",
		"content":  map[string]any{"approve": true},
		"url_flow": map[string]any{"email": email},
	}
}

// resourcesOnly names domains and carries no budget.
func resourcesOnly(domains ...string) string {
	b, _ := json.Marshal(domains)
	return `[{"type":"tollgate:resources","domains":` + string(b) + `}]`
}

// workerName is the Worker serving domain: each '-' doubled, each '.' a
// '-' (ts-story.com: ts--story-com), as the deploy tools demand.
func workerName(domain string) string {
	return strings.ReplaceAll(strings.ReplaceAll(domain, "-", "--"), ".", "-")
}

// provision links email's own Cloudflare account the way a human does it
// (billing_setup, whose Stripe Checkout records the e-mail Stripe
// verified, then account_connect), with the TypeScript client playing the
// human, and registers domains in that account. It returns the account id.
// Its token is its own, so the test's tokens stay as narrow as they were.
func provision(t *testing.T, base, email string, domains ...string) string {
	t.Helper()
	scope, details := "billing:setup account:link", ""
	if len(domains) > 0 {
		scope += " domain:register"
		details = resourcesJSON(domains)
	}
	tok := testkit.TaskToken(t, base, testkit.Grant{Email: email, Agent: "setup", Scope: scope, Details: details})
	steps := []step{callTool("billing_setup", nil), callTool("account_connect", nil)}
	for _, d := range domains {
		steps = append(steps, callTool("domain_register", map[string]any{"domain": d}))
	}
	out := runTS(t, tsScript{Elicit: humanPlays(email), Steps: steps},
		"--http", base+"/mcp", "--header", "Authorization: Bearer "+tok)
	wantField(t, "billing_setup", storyStep(t, "billing_setup", out.Results[0]), "status", "on_file")
	conn := storyStep(t, "account_connect", out.Results[1])
	acct, _ := conn["account_id"].(string)
	if s := conn["status"]; acct == "" || (s != "linked" && s != "created") {
		t.Fatalf("account_connect for %s: %v", email, conn)
	}
	for i, d := range domains {
		assertRegistered(t, d, acct, storyStep(t, "domain_register "+d, out.Results[2+i]))
	}
	return acct
}

// assertRegistered: domain was registered in account acct and recorded as
// a zone of the human's, so the zone tools may act on it.
func assertRegistered(t *testing.T, domain, acct string, m map[string]any) {
	t.Helper()
	wantField(t, "domain_register "+domain, m, "status", "registered")
	wantField(t, "domain_register "+domain, m, "account_id", acct)
	if m["zone_recorded"] != true {
		t.Errorf("domain_register %s: zone_recorded is %v, want true: %v", domain, m["zone_recorded"], m)
	}
}

// liveScripts reads the Worker scripts of one account of a sandbox's fake
// Cloudflare (GET /dev/cloudflare/scripts?account=ID), by name with their
// SHA-256.
func liveScripts(t *testing.T, base, account string) map[string]string {
	t.Helper()
	var body struct {
		Account string            `json:"account"`
		Scripts map[string]string `json:"scripts"`
	}
	getJSON(t, base+"/dev/cloudflare/scripts?account="+account, &body)
	if body.Account != account {
		t.Fatalf("/dev/cloudflare/scripts?account=%s answered for account %q", account, body.Account)
	}
	return body.Scripts
}

// scriptsByAccount reads every account's Worker scripts of a sandbox's
// fake Cloudflare (GET /dev/cloudflare/scripts).
func scriptsByAccount(t *testing.T, base string) map[string]map[string]string {
	t.Helper()
	var body struct {
		Accounts map[string]map[string]string `json:"accounts"`
	}
	getJSON(t, base+"/dev/cloudflare/scripts", &body)
	return body.Accounts
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// spendOf reads a spend_status result: spent minor units by provider. It
// fails the test when anything is still held, or not in USD.
func spendOf(t *testing.T, what string, raw json.RawMessage) map[string]int64 {
	t.Helper()
	type amount struct {
		Minor    int64  `json:"amount_minor"`
		Currency string `json:"currency"`
	}
	var st struct {
		Providers []struct {
			Provider string `json:"provider"`
			Spent    amount `json:"spent"`
			Held     amount `json:"held"`
		} `json:"providers"`
	}
	b, _ := json.Marshal(storyStep(t, what, raw))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%s: %s: %v", what, b, err)
	}
	out := map[string]int64{}
	for _, p := range st.Providers {
		if !strings.EqualFold(p.Spent.Currency, "usd") {
			t.Errorf("%s %s: spent in %q, want USD", what, p.Provider, p.Spent.Currency)
		}
		if p.Held.Minor != 0 {
			t.Errorf("%s %s: %d still held, want 0", what, p.Provider, p.Held.Minor)
		}
		out[p.Provider] = p.Spent.Minor
	}
	return out
}

// wantSpent: spend_status shows exactly want, provider by provider.
func wantSpent(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: spent %v, want %v", what, got, want)
	}
}
