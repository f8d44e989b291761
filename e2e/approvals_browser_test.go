package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// chromium finds Debian's chromium (make deps installs it). Without it the
// test skips, unless TOLLGATE_REQUIRE_CHROMIUM=1 (make test sets it): then a
// missing browser fails the test rather than hiding it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TOLLGATE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium on PATH and TOLLGATE_REQUIRE_CHROMIUM=1: run make deps (apt-get install chromium)")
	}
	t.Skip("no chromium (make deps installs it; TOLLGATE_REQUIRE_CHROMIUM=1 makes this a failure)")
	return ""
}

// browser starts a headless chromium with a fresh profile, nothing fetched
// from anywhere but the sandbox, and returns its context.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1000, 1400),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as that call's
	// context: no timeout on it, one on everything after.
	if err := chromedp.Do(bctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestApprovalsPageInABrowser: an agent without elicitation, acting for a
// sub-agent of a planner, asks to buy a 50.00 USD domain and gets
// approval_required. The human opens the page in a real headless Chromium,
// signs in at the sandbox IdP, reads who asks (the human and both agents,
// in delegation order), what, and the money, and presses Approve; the
// agent's retry with the approval id registers the domain. The browser
// posts the decision itself, so the page's Referrer-Policy and the edge's
// Origin check are the ones a human meets.
func TestApprovalsPageInABrowser(t *testing.T) {
	exe := chromium(t)
	bin := testkit.Binary(t)
	p := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	const email, domain = "browser-human@example.com", "browser-shop.io"
	testkit.LinkAccount(t, p.URL, email)
	details := `[{"type":"tollgate:resources","domains":["` + domain + `"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"80.00","currency":"usd"}]`
	planner := testkit.TaskToken(t, p.URL, testkit.Grant{Email: email, Agent: "planner", Scope: "domain:read domain:register spend:read", Details: details})
	buyer := testkit.TaskToken(t, p.URL, testkit.Grant{Agent: "buyer", Subject: planner, Scope: "domain:register", Details: details})

	c := testkit.HTTP(t, p.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(buyer)}) // no elicitation
	res := mcpCall(t, c, "domain_register", map[string]any{"domain": domain})
	e := refusalOf(t, res)
	if e.Code != "approval_required" {
		t.Fatalf("domain_register without elicitation: %+v", e)
	}
	id, _ := e.Details["approval_id"].(string)
	if id == "" {
		t.Fatalf("approval_required without an approval_id: %+v", e)
	}

	ctx := browser(t, exe)
	page := p.URL + "/approvals/" + id
	err := chromedp.Do(ctx,
		chromedp.Navigate(page),
		// Signed out: the page sends the human to the sandbox IdP's "sign in as".
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SetValue(chromedp.CSS(`input[name="email"]`), email),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		// Back from the IdP, the approval itself.
		chromedp.WaitVisible(chromedp.ID("kind")),
	)
	body := pageText(ctx)
	if err != nil {
		t.Fatalf("sign in and open %s: %v", page, err)
	}
	screenshot(t, ctx, "approval-before.png")

	// Who asks, in the order of the delegation, then what and the money.
	order := []string{"user:" + email,
		"planner (spiffe://tollgate.sandbox/agent/planner)", "buyer (spiffe://tollgate.sandbox/agent/buyer)", // names and attested identities
		"task session", "parent session",
		"domain", domain, "Cloudflare account",
		"price", "50.00 USD", "spent this month", "left of the task budget", "80.00 USD"}
	rest := body
	for _, want := range order {
		i := strings.Index(rest, want)
		if i < 0 {
			if strings.Contains(body, want) {
				t.Fatalf("the approvals page shows %q out of order (who, the agents in delegation order, what, the money; want %q):\n%s", want, order, body)
			}
			t.Fatalf("the approvals page does not show %q:\n%s", want, body)
		}
		rest = rest[i+len(want):]
	}
	if !strings.Contains(body, "Approve lets the agent make exactly this purchase once") {
		t.Errorf("the purchase page's wording:\n%s", body)
	}

	// The browser posts the form itself (its own Origin, Sec-Fetch-Site and
	// Referer, as the page's Referrer-Policy makes them) and lands on the
	// answer page.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button.approve`)))
	answer := ""
	for deadline := time.Now().Add(30 * time.Second); err == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if answer = pageText(ctx); strings.Contains(answer, "Approved.") || strings.Contains(answer, "refused") || strings.Contains(answer, "Forbidden") {
			break
		}
	}
	if err != nil || !strings.Contains(answer, "Approved.") {
		screenshot(t, ctx, "approval-failed.png")
		t.Fatalf("approve in the browser: %v\npage now:\n%s", err, answer)
	}
	screenshot(t, ctx, "approval-answer.png")
	// The approval's own page now says who approved it.
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("status"))); err != nil {
		t.Fatalf("reopen %s: %v", page, err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if !strings.HasPrefix(status, "approved") {
		t.Errorf("status after Approve: %q", status)
	}
	screenshot(t, ctx, "approval-after.png")
	if !strings.Contains(status, email) {
		t.Errorf("status %q does not name who approved", status)
	}

	// The agent retries with the approval id: the call proceeds.
	res = mcpCall(t, c, "domain_register", map[string]any{"domain": domain, "approval_id": id})
	if res.IsError {
		t.Fatalf("the retry after approval: %+v", refusalOf(t, res))
	}
	var reg struct {
		Domain string `json:"domain"`
		Status string `json:"status"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &reg); err != nil || reg.Domain != domain || reg.Status != "registered" {
		t.Fatalf("the retry after approval: %s", b)
	}
}

func mcpCall(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

type refusal struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func refusalOf(t *testing.T, res *mcp.CallToolResult) refusal {
	t.Helper()
	var r struct {
		Error refusal `json:"error"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &r); err != nil || !res.IsError {
		t.Fatalf("not a refusal (isError %v): %s", res.IsError, b)
	}
	return r.Error
}

// screenshot saves the page into the test's artifact directory (under
// go test -artifacts' output directory when that flag is given).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (less is JPEG)
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// pageText is the text of the page the browser shows now ("" if none).
func pageText(ctx context.Context) string {
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	return s
}
