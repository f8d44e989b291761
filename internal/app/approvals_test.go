package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	gates "github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// browser is a person at the approvals page: a cookie jar, redirects not
// followed so that tests see where they lead.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]+)"`)

// csrfOf is the first form's CSRF token in a page.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// login posts the sign-in form (fetched first, for its CSRF token) and
// returns the answer.
func (b *browser) login(field, value, next string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.get("/approvals/login")
	return b.post("/approvals/login", url.Values{"csrf": {csrfOf(b.t, page)}, field: {value}, "next": {next}})
}

// signIn signs in by e-mail (the sandbox's dev login) and checks the
// session cookie's attributes.
func (b *browser) signIn(email string) {
	b.t.Helper()
	resp, body := b.login("email", email, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals" {
		b.t.Fatalf("sign-in as %s: %d %q\n%s", email, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "tg_approvals" {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/approvals" ||
		set.MaxAge < 3500 || set.MaxAge > 3600 || set.Secure {
		b.t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/approvals, 1h, not Secure on http", set)
	}
}

// decide loads the approval's page and posts its form.
func (b *browser) decide(id, decision string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.get("/approvals/" + id)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("approval page: %d\n%s", resp.StatusCode, page)
	}
	return b.post("/approvals/"+id, url.Values{"csrf": {csrfOf(b.t, page)}, "decision": {decision}})
}

// pendingApproval has an agent without elicitation ask to register domain
// for email, whose Cloudflare account is linked; it returns the approval id
// and the agent's client.
func pendingApproval(t *testing.T, a *app.App, base, email, domain string) (string, *client.Client) {
	t.Helper()
	a.LinkTestAccount(t, "user:"+email)
	c := testkit.HTTP(t, base+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(gatedTokenFor(t, base, email, domain))})
	res, err := call(t, c, "domain_register", map[string]any{"domain": domain})
	if err != nil || errCode(t, res) != "approval_required" {
		t.Fatalf("no elicitation: %v %v", err, res)
	}
	d := structured(t, res)["error"].(map[string]any)["details"].(map[string]any)
	return d["approval_id"].(string), c
}

func statusOf(t *testing.T, a *app.App, id string) gates.Status {
	t.Helper()
	ap, err := a.Approvals().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Status
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %s: header %s = %q, want %q", resp.Request.Method, resp.Request.URL.Path, k, got, v)
		}
	}
}

// TestApprovalsPageFlow: a human signs in, sees exactly what the agent
// asked, approves with the form, and the agent's retry goes through.
func TestApprovalsPageFlow(t *testing.T) {
	a, ts := newApp(t)
	const domain = "page-flow.io"
	id, agent := pendingApproval(t, a, ts.URL, "alice@example.com", domain)
	b := newBrowser(t, ts.URL)

	resp, _ := b.get("/approvals/" + id)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals/login?next=%2Fapprovals%2F"+id {
		t.Fatalf("signed out: %d %q, want a redirect to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	checkPageHeaders(t, resp)
	resp, body := b.get(resp.Header.Get("Location"))
	checkPageHeaders(t, resp)
	resp, body = b.post("/approvals/login", url.Values{"csrf": {csrfOf(t, body)}, "email": {"alice@example.com"},
		"next": {"/approvals/" + id}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals/"+id {
		t.Fatalf("sign-in: %d %q, want back to the approval\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	resp, body = b.get("/approvals")
	if resp.StatusCode != 200 || !strings.Contains(body, "/approvals/"+id) || !strings.Contains(body, "user:alice@example.com") {
		t.Fatalf("list: %d\n%s", resp.StatusCode, body)
	}
	checkPageHeaders(t, resp)

	resp, body = b.get("/approvals/" + id)
	checkPageHeaders(t, resp)
	for _, want := range []string{domain, "50.00 USD", "Month to date", "domain_register", `value="approve"`, `value="deny"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the approval page does not show %q:\n%s", want, body)
		}
	}
	resp, body = b.post("/approvals/"+id, url.Values{"csrf": {csrfOf(t, body)}, "decision": {"approve"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Approved. The agent can now retry.") {
		t.Fatalf("approve: %d\n%s", resp.StatusCode, body)
	}
	checkPageHeaders(t, resp)
	if s := statusOf(t, a, id); s != gates.StatusApproved {
		t.Fatalf("status %s after approve", s)
	}

	// The decision is in the audit trail, with who decided and what was shown.
	msgs, err := a.Redis.Client.XRange(context.Background(), "tg:{user:alice@example.com}:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var audited map[string]any
	for _, m := range msgs {
		var e map[string]any
		_ = json.Unmarshal([]byte(m.Values["entry"].(string)), &e)
		if d, _ := e["detail"].(map[string]any); d["approval_id"] == id {
			audited = e
		}
	}
	if d, _ := audited["detail"].(map[string]any); audited["decision"] != "allow" || audited["code"] != "purchase" ||
		d["decided_by"] != "page:user:alice@example.com" || !strings.Contains(d["message"].(string), domain) {
		t.Fatalf("audit entry of the decision: %v", audited)
	}

	res, err := call(t, agent, "domain_register", map[string]any{"domain": domain, "approval_id": id})
	if err != nil || res.IsError {
		t.Fatalf("the agent's retry: %v %v", err, structured(t, res))
	}
	acct := a.LinkTestAccount(t, alicePrincipal)
	if out := structured(t, res); out["account_id"] != acct || out["zone_recorded"] != true {
		t.Fatalf("the agent's retry: %v, want the registration in alice's account %s with its zone recorded", out, acct)
	}
	if ch := a.FakeCloudflare().Charges(); len(ch) != 1 || ch[0].Account != acct {
		t.Fatalf("charges %+v, want 1 in alice's account %s", ch, acct)
	}
	// The decision stands: the page shows it and offers no form.
	resp, body = b.get("/approvals/" + id)
	if resp.StatusCode != 200 || strings.Contains(body, `value="approve"`) || !strings.Contains(body, "used") {
		t.Fatalf("the used approval's page: %d\n%s", resp.StatusCode, body)
	}
}

// TestApprovalsPageDeny: deny is recorded, and the agent's retry is refused.
func TestApprovalsPageDeny(t *testing.T) {
	a, ts := newApp(t)
	id, agent := pendingApproval(t, a, ts.URL, "dora@example.com", "page-deny.io")
	b := newBrowser(t, ts.URL)
	b.signIn("dora@example.com")
	resp, body := b.decide(id, "deny")
	if resp.StatusCode != 200 || !strings.Contains(body, "Denied. Nothing will be done.") {
		t.Fatalf("deny: %d\n%s", resp.StatusCode, body)
	}
	res, _ := call(t, agent, "domain_register", map[string]any{"domain": "page-deny.io", "approval_id": id})
	if code := errCode(t, res); code != "approval_denied" || len(a.FakeCloudflare().Charges()) != 0 {
		t.Fatalf("retry after deny: %q, %d charges", code, len(a.FakeCloudflare().Charges()))
	}
}

// TestApprovalsPageAttacks: each attack is refused and leaves the approval
// as it was.
func TestApprovalsPageAttacks(t *testing.T) {
	a, ts := newApp(t)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, id string)
		want gates.Status // the approval's status afterwards
	}{
		{"CSRF-less POST", func(t *testing.T, id string) {
			b := newBrowser(t, ts.URL)
			b.signIn("alice@example.com")
			resp, _ := b.post("/approvals/"+id, url.Values{"decision": {"approve"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			checkPageHeaders(t, resp)
		}, gates.StatusPending},
		{"CSRF-less POST signed out", func(t *testing.T, id string) {
			resp, _ := newBrowser(t, ts.URL).post("/approvals/"+id, url.Values{"decision": {"approve"}, "csrf": {"x"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		}, gates.StatusPending},
		{"CSRF token of another session", func(t *testing.T, id string) {
			first, second := newBrowser(t, ts.URL), newBrowser(t, ts.URL)
			first.signIn("alice@example.com")
			second.signIn("alice@example.com")
			_, page := first.get("/approvals/" + id)
			resp, _ := second.post("/approvals/"+id, url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		}, gates.StatusPending},
		{"CSRF token of another approval", func(t *testing.T, id string) {
			other, _ := pendingApproval(t, a, ts.URL, "alice@example.com", "attack-other.io")
			b := newBrowser(t, ts.URL)
			b.signIn("alice@example.com")
			_, page := b.get("/approvals/" + other)
			resp, _ := b.post("/approvals/"+id, url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		}, gates.StatusPending},
		{"approval of another principal", func(t *testing.T, id string) {
			m := newBrowser(t, ts.URL)
			m.signIn("mallory@example.com")
			resp, body := m.get("/approvals/" + id)
			_, unknown := m.get("/approvals/no-such-approval")
			if resp.StatusCode != http.StatusNotFound || body != unknown {
				t.Fatalf("another principal's approval: %d, and not the page of an unknown id:\n%s", resp.StatusCode, body)
			}
			if strings.Contains(body, "attack") || strings.Contains(body, "USD") {
				t.Fatalf("the 404 reveals the approval:\n%s", body)
			}
			// Mallory's own valid token, for her session, on alice's id.
			_, list := m.get("/approvals")
			resp, _ = m.post("/approvals/"+id, url.Values{"csrf": {csrfOf(t, list)}, "decision": {"approve"}})
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
				t.Fatalf("mallory's post: %d", resp.StatusCode)
			}
			_, list = m.get("/approvals")
			if strings.Contains(list, id) {
				t.Fatal("alice's approval is listed for mallory")
			}
		}, gates.StatusPending},
		{"forged session cookie", func(t *testing.T, id string) {
			b := newBrowser(t, ts.URL)
			b.signIn("mallory@example.com")
			u, _ := url.Parse(ts.URL + "/approvals")
			for _, c := range b.c.Jar.Cookies(u) {
				if c.Name != "tg_approvals" {
					continue
				}
				parts := strings.Split(c.Value, "|")
				parts[0] = base64.RawURLEncoding.EncodeToString([]byte("user:alice@example.com"))
				b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tg_approvals", Value: strings.Join(parts, "|"), Path: "/approvals"}})
			}
			resp, _ := b.get("/approvals/" + id)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/approvals/login") {
				t.Fatalf("a cookie with the principal swapped: %d %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
			}
		}, gates.StatusPending},
		{"expired approval", func(t *testing.T, id string) {
			b := newBrowser(t, ts.URL)
			b.signIn("alice@example.com")
			_, page := b.get("/approvals/" + id)
			// The human opened the page in time and clicked too late: move
			// the record's expiry (judged by the app's clock) into the past.
			key := "tg:{user:alice@example.com}:approval:" + id
			if n, err := a.Redis.Client.HSet(ctx, key, "expires_ms", strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)).Result(); err != nil || n != 0 {
				t.Fatalf("expire %s: %d %v (the record is not where gates/human documents it)", key, n, err)
			}
			resp, body := b.post("/approvals/"+id, url.Values{"csrf": {csrfOf(t, page)}, "decision": {"approve"}})
			if resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") || !strings.Contains(body, "nothing was done") {
				t.Fatalf("late approve: %d\n%s", resp.StatusCode, body)
			}
		}, gates.StatusExpired},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := pendingApproval(t, a, ts.URL, "alice@example.com", "attack-"+strconv.Itoa(i)+".io")
			tc.run(t, id)
			if s := statusOf(t, a, id); s != tc.want {
				t.Fatalf("status %s afterwards, want %s", s, tc.want)
			}
		})
	}
	if n := len(a.FakeCloudflare().Charges()); n != 0 {
		t.Fatalf("%d charges from attacks", n)
	}
}

// TestApprovalsPageSignIn: sign-in refuses what it must, and never
// redirects off the page.
func TestApprovalsPageSignIn(t *testing.T) {
	_, ts := newApp(t)
	redirects := []string{
		"https://evil.example/", "//evil.example/approvals", "/\\evil.example", "/approvals/../../evil",
		"/approvals/%2F%2Fevil.example", "/\t/evil.example", "javascript:alert(1)", "/approvals?x=https://evil.example",
		"/elsewhere",
	}
	for _, next := range redirects {
		t.Run("open redirect in next "+strconv.Quote(next), func(t *testing.T) {
			b := newBrowser(t, ts.URL)
			_, form := b.get("/approvals/login?next=" + url.QueryEscape(next))
			if strings.Contains(form, "evil") {
				t.Fatalf("the sign-in form carries the foreign next:\n%s", form)
			}
			resp, _ := b.post("/approvals/login", url.Values{"csrf": {csrfOf(t, form)}, "email": {"alice@example.com"}, "next": {next}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals" {
				t.Fatalf("next %q: %d %q, want /approvals", next, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}

	forged := forgeUserToken(t, testkit.DevLogin(t, ts.URL, "mallory@example.com"), "alice@example.com")
	refusals := []struct {
		name   string
		form   func(b *browser) url.Values
		status int
	}{
		{"login with a forged user token", func(b *browser) url.Values {
			_, page := b.get("/approvals/login")
			return url.Values{"csrf": {csrfOf(t, page)}, "token": {forged}}
		}, http.StatusForbidden},
		{"login with garbage for a token", func(b *browser) url.Values {
			_, page := b.get("/approvals/login")
			return url.Values{"csrf": {csrfOf(t, page)}, "token": {"not.a.token"}}
		}, http.StatusForbidden},
		// The agent holds the human's user token (it exchanged it): a
		// pasted token must not let it approve its own gates.
		{"login with the human's genuine user token, as an agent would", func(b *browser) url.Values {
			_, page := b.get("/approvals/login")
			return url.Values{"csrf": {csrfOf(t, page)}, "token": {testkit.DevLogin(t, ts.URL, "alice@example.com")}}
		}, http.StatusForbidden},
		{"login CSRF: no token", func(b *browser) url.Values {
			b.get("/approvals/login")
			return url.Values{"email": {"mallory@example.com"}}
		}, http.StatusForbidden},
		{"login CSRF: token without its pre-session cookie", func(b *browser) url.Values {
			_, page := newBrowser(t, ts.URL).get("/approvals/login")
			return url.Values{"csrf": {csrfOf(t, page)}, "email": {"mallory@example.com"}}
		}, http.StatusForbidden},
		{"login with both e-mail and token", func(b *browser) url.Values {
			_, page := b.get("/approvals/login")
			return url.Values{"csrf": {csrfOf(t, page)}, "email": {"alice@example.com"}, "token": {forged}}
		}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, ts.URL)
			resp, body := b.post("/approvals/login", tc.form(b))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "tg_approvals" && c.MaxAge > 0 {
					t.Fatal("a refused sign-in set a session cookie")
				}
			}
			if resp, _ := b.get("/approvals"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("after a refused sign-in the list answers %d, want a redirect to sign in", resp.StatusCode)
			}
		})
	}

	t.Run("sign out", func(t *testing.T) {
		b := newBrowser(t, ts.URL)
		b.signIn("alice@example.com")
		_, list := b.get("/approvals")
		resp, _ := b.post("/approvals/logout", url.Values{"csrf": {csrfOf(t, list)}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign out: %d", resp.StatusCode)
		}
		if resp, _ := b.get("/approvals"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after sign-out the list answers %d", resp.StatusCode)
		}
	})
}

// TestApprovalsPageEscapesWhatTheAgentWrote: the summary and fields are
// shown verbatim, as text, never as markup.
func TestApprovalsPageEscapesWhatTheAgentWrote(t *testing.T) {
	a, ts := newApp(t)
	ap, err := a.Approvals().Create(context.Background(), gates.Approval{
		Binding: gates.Binding{Principal: "user:alice@example.com", Session: "s1", Tool: "deploy_promote", ArgsDigest: "sha256:00"},
		Kind:    gates.Production, Summary: "Promote <script>alert(1)</script>\nline two & more",
		Fields: map[string]string{"script": `"><img src=x onerror=alert(1)>`},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts.URL)
	b.signIn("alice@example.com")
	_, page := b.get("/approvals/" + ap.ID)
	for _, bad := range []string{"<script>", "<img"} {
		if strings.Contains(page, bad) {
			t.Fatalf("the page renders the agent's %q as markup:\n%s", bad, page)
		}
	}
	for _, want := range []string{"Promote &lt;script&gt;alert(1)&lt;/script&gt;\nline two &amp; more", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page does not show %q verbatim:\n%s", want, page)
		}
	}
}

// forgeUserToken rewrites a genuine token's subject, keeping its signature.
func forgeUserToken(t *testing.T, tok, email string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"], claims["email"] = email, email
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}
