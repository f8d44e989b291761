//go:build !nosandbox

package compose_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/net/idna"

	"github.com/tollgate-dev/tollgate/compose"
	fakecf "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

const (
	aliceP = "user:alice@example.com"
	bobP   = "user:bob@example.com"
)

// allScopes is every scope a zone, Worker or token tool needs, so that a
// refusal can only come from tenancy.
const allScopes = "domain:read domain:register dns:read dns:write ssl:write token:create deploy:preview deploy:production spend:read"

const workerJS = "export default { fetch() { return new Response('hi') } }"

// tenantClient is an MCP client for an agent of email with details.
func tenantClient(t *testing.T, base, email, agent, details string) *client.Client {
	t.Helper()
	tok := testkit.TaskToken(t, base, testkit.Grant{Email: email, Agent: agent, Scope: allScopes, Details: details})
	return testkit.HTTP(t, base+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
}

// lookalike is bоb-shop.com (Cyrillic о) in punycode.
var lookalike = func() string {
	n, err := idna.Lookup.ToASCII("bоb-shop.com")
	if err != nil {
		panic(err)
	}
	return n
}()

// budgetOnly names no domains but carries budgets.
const budgetOnly = `[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"}]`

// TestCrossTenantMatrix: two humans, each with their own linked Cloudflare
// account, a zone and a production Worker. Alice's agents try every zone-,
// Worker- and token-touching tool on Bob's objects three ways — with a
// token naming them, with one naming nothing, and with a look-alike — and
// every attempt is refused before anything is held, while Bob's account
// sees no request at all.
func TestCrossTenantMatrix(t *testing.T) {
	a, ts := newApp(t)
	fake := a.FakeCloudflare()
	a.AddTestZone(t, aliceP, "alice-shop.com")
	bobAcct := a.LinkTestAccount(t, bobP)
	// Bob registers his domain through tollgate: it becomes a zone of his
	// account, recorded as his.
	bob := tenantClient(t, ts.URL, "bob@example.com", "bob-agent", resources("bob-shop.com"))
	res, _ := call(t, bob, "domain_register", map[string]any{"domain": "bob-shop.com"})
	if res.IsError || structured(t, res)["account_id"] != bobAcct || structured(t, res)["zone_recorded"] != true {
		t.Fatalf("bob registers bob-shop.com: %v", structured(t, res))
	}
	var bobZone string
	for _, z := range fake.Zones() {
		if z.Name == "bob-shop.com" && z.AccountID == bobAcct {
			bobZone = z.ID
		}
	}
	if bobZone == "" {
		t.Fatalf("no zone of bob-shop.com in bob's account: %+v", fake.Zones())
	}
	fake.PutScriptIn(bobAcct, "bob-shop-com", []byte(workerJS))
	if _, err := fake.PutRecord(bobZone, fakeRecord()); err != nil {
		t.Fatal(err)
	}
	// Bob's own agent can work on his zone: the objects are real.
	if res, _ := call(t, bob, "dns_list", map[string]any{"zone": "bob-shop.com"}); res == nil || res.IsError {
		t.Fatalf("bob cannot list his own zone: %v", structured(t, res))
	}
	before := len(fake.RequestsFor(bobAcct))
	charges := len(fake.Charges())

	ways := []struct {
		name, details, zone, worker string
		codes                       []string
	}{
		{"token naming the victim's zone", resources("bob-shop.com"), "bob-shop.com", "bob-shop-com", []string{"resource_forbidden", "domain_unavailable"}},
		{"token naming nothing", budgetOnly, "bob-shop.com", "bob-shop-com", []string{"resource_forbidden", "domain_unavailable"}},
		// The token names the look-alike (Cyrillic о) in its punycode form;
		// the call spells it in Unicode.
		{"look-alike of the victim's zone", resources(lookalike), "bоb-shop.com", "xn----bb--shop--9ig-com", []string{"resource_forbidden", "lookalike_domain", "invalid_domain", "invalid_argument"}},
	}
	for _, way := range ways {
		alice := tenantClient(t, ts.URL, "alice@example.com", "mallory-agent", way.details)
		attempts := []struct {
			tool string
			args map[string]any
		}{
			{"dns_list", map[string]any{"zone": way.zone}},
			{"dns_upsert", map[string]any{"zone": way.zone, "type": "A", "name": "www", "content": "192.0.2.66"}},
			{"dns_delete", map[string]any{"zone": way.zone, "id": "00000000000000000000000000000000"}},
			{"ssl_configure", map[string]any{"zone": way.zone, "mode": "off"}},
			{"api_token_create", map[string]any{"zone": way.zone, "permissions": []any{"DNS Write"}}},
			{"deploy_preview", map[string]any{"name": way.worker, "script": "export default {}"}},
			{"deploy_promote", map[string]any{"name": way.worker, "preview_id": "0123456789abcdef0123456789abcdef"}},
			{"domain_register", map[string]any{"domain": way.zone}},
		}
		for _, at := range attempts {
			res, err := call(t, alice, at.tool, at.args)
			if err != nil {
				t.Fatalf("%s / %s: %v", way.name, at.tool, err)
			}
			code := errCode(t, res)
			if !contains(way.codes, code) {
				t.Errorf("%s / %s: code %q (%v), want one of %v", way.name, at.tool, code, structured(t, res), way.codes)
			}
		}
	}
	if got := fake.RequestsFor(bobAcct); len(got) != before {
		for _, r := range got[before:] {
			t.Errorf("request against the victim's account: %s %s (credential of %q)", r.Method, r.Path, r.Account)
		}
	}
	if n := len(fake.Charges()) - charges; n != 0 {
		t.Fatalf("%d charges for refused attempts: %+v", n, fake.Charges())
	}
	if s := fake.ScriptsIn(bobAcct)["bob-shop-com"]; string(s.Body) != workerJS {
		t.Fatalf("the victim's production Worker changed: %q", s.Body)
	}
	if recs := fake.Records(bobZone); len(recs) != 1 || recs[0].Content != "192.0.2.1" {
		t.Fatalf("the victim's DNS changed: %+v", recs)
	}
	for _, tok := range fake.Tokens() {
		if tok.Account == bobAcct {
			t.Fatalf("a token was minted in the victim's account: %+v", tok)
		}
	}
	// Nothing was held or spent for any refused attempt.
	alice := tenantClient(t, ts.URL, "alice@example.com", "mallory-agent", budgetOnly)
	res, _ = call(t, alice, "spend_status", map[string]any{"provider": "cloudflare"})
	p := structured(t, res)["providers"].([]any)[0].(map[string]any)
	if p["held"].(map[string]any)["amount_minor"] != float64(0) || p["spent"].(map[string]any)["amount_minor"] != float64(0) {
		t.Fatalf("refused attempts held or spent money: %v", p)
	}
	// Every refusal is audited with the principal, the agent and the target.
	waitAudit(t, a, aliceP, func(e sessions.Entry) bool {
		return e.Event == "tool_call" && e.Tool == "ssl_configure" && e.Code == "resource_forbidden" &&
			len(e.Actors) > 0 && strings.Contains(e.Actors[0], "mallory-agent") && e.Detail["target"] == "bob-shop.com"
	})
}

// TestWorkersAreInjectivePerDomain: shop.example and shop.other are two
// Workers, even in one account, and the gate names the Worker, its
// account and the domain it serves.
func TestWorkersAreInjectivePerDomain(t *testing.T) {
	a, ts := newApp(t)
	acct := a.LinkTestAccount(t, aliceP)
	a.AddTestZone(t, aliceP, "shop.example")
	a.AddTestZone(t, aliceP, "shop.other")
	c := tenantClient(t, ts.URL, "alice@example.com", "deployer", resources("shop.example"))
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": "shop-example", "script": workerJS})
	if res.IsError || structured(t, res)["domain"] != "shop.example" || structured(t, res)["account_id"] != acct {
		t.Fatalf("deploy_preview: %v", structured(t, res))
	}
	for _, name := range []string{"shop", "shop-other", "shop-example-", "shop--example"} {
		res, _ := call(t, c, "deploy_preview", map[string]any{"name": name, "script": workerJS})
		if code := errCode(t, res); code != "resource_forbidden" && code != "invalid_argument" && code != "invalid_domain" {
			t.Errorf("Worker %q for a task on shop.example: code %q", name, code)
		}
	}
	if _, ok := a.FakeCloudflare().ScriptsIn(acct)["shop-other---preview-"+structured(t, res)["preview_id"].(string)]; ok {
		t.Fatal("a preview landed under another domain's Worker")
	}
}

// TestNoLinkedAccount: a principal without a linked account gets
// account_required from every Cloudflare tool; nothing is held or sent.
func TestNoLinkedAccount(t *testing.T) {
	a, ts := newApp(t)
	c := tenantClient(t, ts.URL, "carol@example.com", "agent", resources("carol.com"))
	before := len(a.FakeCloudflare().Requests())
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"domain_check", map[string]any{"domain": "carol.com"}},
		{"domain_register", map[string]any{"domain": "carol.com"}},
		{"dns_list", map[string]any{"zone": "carol.com"}},
		{"dns_upsert", map[string]any{"zone": "carol.com", "type": "A", "name": "www", "content": "192.0.2.1"}},
		{"ssl_configure", map[string]any{"zone": "carol.com", "mode": "strict"}},
		{"api_token_create", map[string]any{"zone": "carol.com", "permissions": []any{"DNS Write"}}},
		{"deploy_preview", map[string]any{"name": "carol-com", "script": workerJS}},
	} {
		res, _ := call(t, c, tc.tool, tc.args)
		if code := errCode(t, res); code != "account_required" || !strings.Contains(resultText(res), "account_connect") {
			t.Errorf("%s: code %q: %s", tc.tool, code, resultText(res))
		}
	}
	if n := len(a.FakeCloudflare().Requests()) - before; n != 0 {
		t.Fatalf("%d requests reached Cloudflare without a linked account", n)
	}
}

// TestRevokedOrExpiredCredential: an expired access token is renewed
// through the refresh grant and written back; a revoked grant is
// account_relink_required, with nothing held.
func TestRevokedOrExpiredCredential(t *testing.T) {
	a, ts := newApp(t)
	fake := a.FakeCloudflare()
	acct := a.LinkTestAccount(t, aliceP)
	a.AddTestZone(t, aliceP, "renew.com")
	c := tenantClient(t, ts.URL, "alice@example.com", "agent", resources("renew.com", "fresh-one.com"))

	fake.ExpireAccessTokens(acct)
	if res, _ := call(t, c, "dns_list", map[string]any{"zone": "renew.com"}); res.IsError {
		t.Fatalf("expired access token not renewed: %v", structured(t, res))
	}
	fake.RevokeGrants(acct)
	fake.ExpireAccessTokens(acct)
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"dns_list", map[string]any{"zone": "renew.com"}},
		{"domain_register", map[string]any{"domain": "fresh-one.com"}},
	} {
		res, _ := call(t, c, tc.tool, tc.args)
		if code := errCode(t, res); code != "account_relink_required" {
			t.Fatalf("%s with a revoked grant: %q %v", tc.tool, code, structured(t, res))
		}
	}
	// A revoked access token that has not expired is refused by
	// Cloudflare itself: the same error.
	acct2 := a.LinkTestAccount(t, bobP)
	a.AddTestZone(t, bobP, "bob-renew.com")
	fake.RevokeGrants(acct2)
	b := tenantClient(t, ts.URL, "bob@example.com", "agent", resources("bob-renew.com"))
	if res, _ := call(t, b, "dns_list", map[string]any{"zone": "bob-renew.com"}); errCode(t, res) != "account_relink_required" {
		t.Fatalf("revoked access token: %v", structured(t, res))
	}
	res, _ := call(t, c, "spend_status", map[string]any{"provider": "cloudflare"})
	p := structured(t, res)["providers"].([]any)[0].(map[string]any)
	if p["held"].(map[string]any)["amount_minor"] != float64(0) || len(fake.Charges()) != 0 {
		t.Fatalf("a refused credential held or charged: %v %v", p, fake.Charges())
	}
}

func fakeRecord() fakecf.DNSRecord {
	return fakecf.DNSRecord{Type: "A", Name: "www.bob-shop.com", Content: "192.0.2.1", TTL: 1}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func resultText(res *mcp.CallToolResult) string {
	b, _ := json.Marshal(res)
	return string(b)
}

// waitAudit waits (the tool_call entries are written in the background)
// for an entry of principal that matches.
func waitAudit(t *testing.T, a *compose.App, principal string, match func(sessions.Entry) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var buf strings.Builder
		if _, err := a.Trail().Export(context.Background(), &buf, sessions.ExportFilter{Principal: principal}); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e sessions.Entry
			if json.Unmarshal(sc.Bytes(), &e) == nil && match(e) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching audit entry for %s:\n%s", principal, buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEveryCloudflareToolActsInTheLinkedAccount: the guard's tenancy step
// is declared by every tool that calls Cloudflare, and the zone and Worker
// tools need the zone to be the account's. A new tool that forgets it
// fails here (and Register refuses a Metered Cloudflare tool without it).
func TestEveryCloudflareToolActsInTheLinkedAccount(t *testing.T) {
	a, _ := newApp(t)
	want := map[string]struct{ account, owned bool }{
		"domain_check": {true, false}, "domain_register": {true, false},
		"dns_list": {true, true}, "dns_upsert": {true, true}, "dns_delete": {true, true},
		"ssl_configure": {true, true}, "api_token_create": {true, true},
		"deploy_preview": {true, true}, "deploy_promote": {true, true},
		// account_connect links the account: it cannot need one.
		"account_connect": {false, false},
	}
	seen := 0
	for _, tl := range a.Tools {
		if tl.Provider != "cloudflare" {
			continue
		}
		seen++
		w, ok := want[tl.Name()]
		if !ok {
			t.Errorf("%s calls Cloudflare but is not in this table: decide its tenancy", tl.Name())
			continue
		}
		if tl.Account != w.account || tl.Owned != w.owned {
			t.Errorf("%s: Account %v Owned %v, want %v %v", tl.Name(), tl.Account, tl.Owned, w.account, w.owned)
		}
		if w.owned && (tl.Target == "" || (tl.WorkerTarget != (tl.Target == "name"))) {
			t.Errorf("%s: target %q (worker %v)", tl.Name(), tl.Target, tl.WorkerTarget)
		}
	}
	if seen != len(want) {
		t.Errorf("%d Cloudflare tools, the table has %d", seen, len(want))
	}
}

// TestConsentAsAnotherPersonLinksNothing: the account linked is the one of
// the e-mail Stripe verified. A human (or an agent steering their browser)
// who consents at Cloudflare as somebody else — here by rewriting the
// login hint to alice's — links nothing.
func TestConsentAsAnotherPersonLinksNothing(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Email: "eve@example.com", Scope: "account:link"})
	agent := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	billingOnFile(t, a, "eve@example.com")
	// eve has no Cloudflare account: force the consent path.
	id := askApproval(t, agent, "account_connect", map[string]any{"create": false})
	b := newBrowser(t, ts.URL)
	b.signIn("eve@example.com")
	resp, body := b.get("/approvals/" + id + "/cloudflare")
	u, _ := url.Parse(location(t, resp, body))
	q := u.Query()
	q.Set("login_hint", "alice@example.com")
	u.RawQuery = q.Encode()
	resp, page := b.abs(http.MethodGet, u.String(), nil)
	m, c := formAction.FindStringSubmatch(page), consentField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || c == nil || !strings.Contains(page, "alice@example.com") {
		t.Fatalf("consent page: %d\n%s", resp.StatusCode, page)
	}
	action, _ := url.Parse(m[1])
	resp, body = b.abs(http.MethodPost, u.ResolveReference(action).String(), url.Values{"consent": {c[1]}})
	resp, body = b.abs(http.MethodGet, location(t, resp, body), nil)
	if resp.StatusCode == http.StatusOK || !strings.Contains(body, "nothing was linked") || !strings.Contains(body, "eve@example.com") {
		t.Fatalf("callback after consenting as alice: %d\n%s", resp.StatusCode, body)
	}
	if acct, _ := a.Redis.Client.HGet(context.Background(), "tg:{user:eve@example.com}:links", "cloudflare_account").Result(); acct != "" {
		t.Fatalf("eve is linked to %s", acct)
	}
	res, _ := call(t, agent, "account_connect", map[string]any{"create": false, "approval_id": id})
	// The refused link approved nothing: the approval is still pending.
	if code := errCode(t, res); code != "approval_pending" {
		t.Fatalf("account_connect after the refused link: %s", resultJSON(t, res))
	}
}

// TestStoredSecretIsNeverReplaced: a task cannot replace the stored secret
// of another task's API token (which would stay live at Cloudflare with
// its secret lost); nothing is created at Cloudflare.
func TestStoredSecretIsNeverReplaced(t *testing.T) {
	a, ts := newApp(t)
	a.AddTestZone(t, aliceP, "one.com")
	a.AddTestZone(t, aliceP, "two.com")
	first := tenantClient(t, ts.URL, "alice@example.com", "agent-one", resources("one.com"))
	if res, _ := call(t, first, "api_token_create", map[string]any{"zone": "one.com", "permissions": []any{"DNS Write"}, "name": "shared"}); res.IsError {
		t.Fatalf("first token: %s", resultJSON(t, res))
	}
	tokens := len(a.FakeCloudflare().Tokens())
	second := tenantClient(t, ts.URL, "alice@example.com", "agent-two", resources("two.com"))
	res, _ := call(t, second, "api_token_create", map[string]any{"zone": "two.com", "permissions": []any{"Zone Read"}, "name": "shared"})
	if code := errCode(t, res); code != "secret_exists" {
		t.Fatalf("second token under the same name: %s", resultJSON(t, res))
	}
	if n := len(a.FakeCloudflare().Tokens()); n != tokens {
		t.Fatalf("a token was created at Cloudflare although its secret could not be stored (%d → %d)", tokens, n)
	}
}

// TestFormGatesByApproval: with --form-gates approval, a purchase,
// production or terms question is never answered by the MCP client (an
// agent running its own client could): it parks as an approval that only
// the human, signed in on the page, or an operator decides.
func TestFormGatesByApproval(t *testing.T) {
	a, ts := newAppWith(t, func(c *config.Config) { c.FormGates = "approval" })
	acct := a.LinkTestAccount(t, aliceP)
	a.AddTestZone(t, aliceP, "approve-me.com")
	a.FakeCloudflare().PutScriptIn(acct, "approve--me-com", []byte(workerJS))
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resources("approve-me.com")})
	// A client that accepts every question at once: the agent answering itself.
	yes := &human{action: mcp.ElicitationResponseActionAccept}
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Era: testkit.Modern, Headers: testkit.Bearer(tok), Elicit: yes})
	res, _ := call(t, c, "deploy_preview", map[string]any{"name": "approve--me-com", "script": "export default {};\n"})
	id := structured(t, res)["preview_id"]
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "approve--me-com", "preview_id": id})
	if code := errCode(t, res); code != "approval_required" {
		t.Fatalf("promote with a client that answers forms itself: %s", resultJSON(t, res))
	}
	if s := a.FakeCloudflare().ScriptsIn(acct)["approve--me-com"]; string(s.Body) != workerJS {
		t.Fatal("the production Worker changed without a human")
	}
	approval, _ := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	if _, err := a.Approvals().Decide(context.Background(), approval, aliceP, true, "alice"); err != nil {
		t.Fatal(err)
	}
	res, _ = call(t, c, "deploy_promote", map[string]any{"name": "approve--me-com", "preview_id": id, "approval_id": approval})
	if res.IsError || structured(t, res)["preview_id"] != id {
		t.Fatalf("promote after the human approved: %s", resultJSON(t, res))
	}
}

// TestEdgeRefusalsAreAudited: a tool call the HTTP edge refuses (403
// insufficient_scope) is in the audit trail with the caller, the agent and
// the tool, like the guard's refusals: probing leaves a trace.
func TestEdgeRefusalsAreAudited(t *testing.T) {
	a, ts := newApp(t)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "prober", Scope: "catalog:read"})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	if _, err := call(t, c, "dns_upsert", map[string]any{"zone": "x.com", "type": "A", "name": "www", "content": "192.0.2.1"}); err == nil {
		t.Fatal("a token without dns:write was not refused at the edge")
	}
	waitAudit(t, a, aliceP, func(e sessions.Entry) bool {
		return e.Event == "tool_call" && e.Tool == "dns_upsert" && e.Decision == sessions.DecisionDeny &&
			e.Code == "insufficient_scope" && len(e.Actors) == 1 && strings.Contains(e.Actors[0], "prober") && e.Session != ""
	})
}
