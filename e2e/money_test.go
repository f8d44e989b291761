package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func resourcesJSON(domains []string) string {
	b, _ := json.Marshal(domains)
	return `[{"type":"tollgate:resources","domains":` + string(b) + `},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`
}

func raceDomains(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%02d.com", prefix, i))
	}
	return out
}

// fixtureCharges reads what a sandbox server's fake Cloudflare charged
// account.
func fixtureCharges(t *testing.T, base, account string) (n int, total int64) {
	t.Helper()
	var body struct {
		Charges []struct {
			Account string `json:"account_id"`
			Price   struct {
				Minor int64 `json:"amount_minor"`
			} `json:"price"`
		} `json:"charges"`
	}
	getJSON(t, base+"/dev/cloudflare/charges", &body)
	for _, c := range body.Charges {
		if c.Account == account {
			n++
			total += c.Price.Minor
		}
	}
	return n, total
}

func register(t *testing.T, c *client.Client, domain string) (code string) {
	return callCode(t, c, "domain_register", map[string]any{"domain": domain})
}

// callCode calls tool and returns the refusal's code, "" on success.
func callCode(t *testing.T, c *client.Client, tool string, args map[string]any) (code string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "error: " + err.Error()
	}
	if !res.IsError {
		return ""
	}
	b, _ := json.Marshal(res.StructuredContent)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestTwoReplicasRacingRegistrationsStayUnderTheCap: two serve processes on
// one Redis, MCP clients racing domain_register on both, in alice's linked
// account; together they never pass the principal's 100.00 USD cap.
//
// Replica B uses replica A's fake providers (--sandbox-providers-from), so
// both act in the same fake accounts, as replicas in production share
// Cloudflare. Alice's account is linked with the sandbox's shortcut, not
// by the browser flows: both replicas announce the shared public URL
// 127.0.0.1:7998, where nothing listens, so Stripe's and Cloudflare's
// redirects back would land nowhere. The flows themselves are
// TestTypeScriptSDKWholeStory's.
func TestTwoReplicasRacingRegistrationsStayUnderTheCap(t *testing.T) {
	bin := testkit.Binary(t)
	shared := []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t), "TOLLGATE_PUBLIC_URL=http://127.0.0.1:7998"}
	a := testkit.Serve(t, bin, shared)
	b := testkit.Serve(t, bin, append(shared, "TOLLGATE_SANDBOX_PROVIDERS_FROM="+a.URL))
	acct := testkit.LinkAccount(t, a.URL, "alice@example.com")
	names := raceDomains("replica", 16)
	tok := testkit.TaskToken(t, a.URL, testkit.Grant{Scope: "domain:read domain:register spend:read", Details: resourcesJSON(names)})
	clients := []*client.Client{
		testkit.HTTP(t, a.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)}),
		testkit.HTTP(t, b.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)}),
	}
	var wg sync.WaitGroup
	codes := make([]string, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = register(t, clients[i%2], n)
		}()
	}
	wg.Wait()
	ok := 0
	for i, c := range codes {
		switch c {
		case "":
			ok++
		case "cap_exceeded", "approval_required":
			// approval_required: a call that saw the cap already spent
			// parked a cap_raise approval for a human (these clients
			// cannot elicit); either way nothing was charged, which the
			// fake's record of charges below checks.
		default:
			t.Errorf("%s: %s", names[i], c)
		}
	}
	// One set of fakes: A's record of charges is both replicas'.
	n, total := fixtureCharges(t, a.URL, acct)
	if n != ok || total > 10000 || ok == 0 || ok == len(names) {
		t.Fatalf("registered %d; the fake charged %d registrations (%d) against a 10000 cap", ok, n, total)
	}
}

// TestTypeScriptSDKPaidFlow: through the official TypeScript SDK, in the
// account alice linked, a named domain registers, a look-alike is refused,
// racing registrations stop at the cap, and spend_status agrees with the
// fixture's record of charges.
func TestTypeScriptSDKPaidFlow(t *testing.T) {
	tsClient(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	acct := provision(t, srv.URL, "alice@example.com")
	names := append([]string{"ts-shop.com"}, raceDomains("ts-race", 10)...)
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "domain:read domain:register spend:read", Details: resourcesJSON(names)})
	args := []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}

	out := runTS(t, []step{
		listTools(),
		callTool("domain_register", map[string]any{"domain": "ts-shop.com"}),
		callTool("domain_register", map[string]any{"domain": "ts-shоp.com"}), // Cyrillic о
	}, args...)
	assertRegistered(t, "ts-shop.com", acct, storyStep(t, "domain_register of a named domain", out.Results[1]))
	assertRefusal(t, "a look-alike of the named domain", out.Results[2], "lookalike_domain")

	var wg sync.WaitGroup
	results := make([]tsOutput, len(names)-1)
	for i, n := range names[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runTS(t, []step{callTool("domain_register", map[string]any{"domain": n})}, args...)
		}()
	}
	wg.Wait()
	capped := 0
	for _, r := range results {
		var res callResult
		decodeResult(t, "racing domain_register", r.Results[0], &res)
		if res.IsError {
			// approval_required: the cap_raise gate parked a raise for a
			// human (this client cannot elicit); nothing was charged.
			if !strings.Contains(string(res.StructuredContent), `"cap_exceeded"`) && !strings.Contains(string(res.StructuredContent), `"approval_required"`) {
				t.Fatalf("racing registration refused for another reason: %s", res.StructuredContent)
			}
			capped++
		}
	}
	if capped == 0 {
		t.Fatal("no racing registration hit the cap")
	}

	out = runTS(t, []step{listTools(), callTool("spend_status", map[string]any{"provider": "cloudflare"})}, args...)
	var st callResult
	decodeResult(t, "spend_status", out.Results[1], &st)
	var status struct {
		Providers []struct {
			Spent struct {
				Minor int64 `json:"amount_minor"`
			} `json:"spent"`
		} `json:"providers"`
	}
	if err := json.Unmarshal(st.StructuredContent, &status); err != nil || len(status.Providers) != 1 {
		t.Fatalf("spend_status: %s", out.Results[1])
	}
	_, total := fixtureCharges(t, srv.URL, acct)
	if status.Providers[0].Spent.Minor != total || total > 10000 {
		t.Fatalf("spend_status says %d spent, the fixture charged %d", status.Providers[0].Spent.Minor, total)
	}
}
