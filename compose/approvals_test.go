//go:build !nosandbox

package compose_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
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

	"github.com/tollgate-dev/tollgate/compose"
	gates "github.com/tollgate-dev/tollgate/gates/human"
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

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// resolve is ref relative to the absolute URL at.
func resolve(t *testing.T, at, ref string) string {
	t.Helper()
	base, err := url.Parse(at)
	r, err2 := url.Parse(ref)
	if err != nil || err2 != nil {
		t.Fatalf("bad URL %q or %q", at, ref)
	}
	return base.ResolveReference(r).String()
}

// follow follows redirects from at, at most a few, and returns where it
// ended and the answer there.
func (b *browser) follow(at string, resp *http.Response, body string) (string, *http.Response, string) {
	b.t.Helper()
	for i := 0; i < 5 && (resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther); i++ {
		at = resolve(b.t, at, resp.Header.Get("Location"))
		resp, body = b.abs(http.MethodGet, at, nil)
	}
	return at, resp, body
}

// callbackFor goes through a sign-in as a browser does, up to the IdP's
// redirect back: the page sends the browser to the IdP, whose login page
// (the sandbox's "sign in as", or the test provider's) takes email. It
// returns the callback URL the IdP sent the browser to, not yet opened.
func (b *browser) callbackFor(email, next string) string {
	b.t.Helper()
	start := b.base + "/approvals/login"
	if next != "" {
		start += "?next=" + url.QueryEscape(next)
	}
	resp, body := b.abs(http.MethodGet, start, nil)
	at := resolve(b.t, start, location(b.t, resp, body))
	resp, body = b.abs(http.MethodGet, at, nil)
	at, resp, body = b.follow(at, resp, body)
	m := formAction.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("the IdP's login page at %s: %d\n%s", at, resp.StatusCode, body)
	}
	form := url.Values{}
	for _, f := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	form.Set("email", email)
	at = resolve(b.t, at, html.UnescapeString(m[1]))
	resp, body = b.abs(http.MethodPost, at, form)
	for i := 0; i < 5; i++ {
		loc := resolve(b.t, at, location(b.t, resp, body))
		if strings.HasPrefix(loc, b.base+"/approvals/callback?") {
			return loc
		}
		at = loc
		resp, body = b.abs(http.MethodGet, at, nil)
	}
	b.t.Fatalf("the IdP never sent the browser back to the callback (last at %s)", at)
	return ""
}

// login signs in as email through the IdP and returns the callback's answer.
func (b *browser) login(email, next string) (*http.Response, string) {
	b.t.Helper()
	return b.abs(http.MethodGet, b.callbackFor(email, next), nil)
}

// signIn signs in as email (at the sandbox's IdP, or the test's provider)
// and checks the session cookie's attributes.
func (b *browser) signIn(email string) {
	b.t.Helper()
	resp, body := b.login(email, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `content="0;url=/approvals"`) {
		b.t.Fatalf("sign-in as %s: %d\n%s", email, resp.StatusCode, body)
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
func pendingApproval(t *testing.T, a *compose.App, base, email, domain string) (string, *client.Client) {
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

func statusOf(t *testing.T, a *compose.App, id string) gates.Status {
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
		"Referrer-Policy":         "same-origin",
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
	resp, body := b.login("alice@example.com", "/approvals/"+id)
	checkPageHeaders(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `content="0;url=/approvals/`+id+`"`) {
		t.Fatalf("sign-in: %d, want a page that goes back to the approval\n%s", resp.StatusCode, body)
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

// TestApprovalsPageSignIn: in the sandbox, sign-in goes through the
// sandbox's OpenID provider like through any other: the page sends the
// browser there with PKCE (S256), a nonce and a state, and a callback that
// is not the one this browser's sign-in is waiting for is refused. The
// page never redirects off itself.
func TestApprovalsPageSignIn(t *testing.T) {
	_, ts := newApp(t)
	checkAuthorizeRedirect(t, newBrowser(t, ts.URL), ts.URL+"/dev/idp", "tollgate-approvals", ts.URL+"/approvals/callback")

	redirects := []string{
		"https://evil.example/", "//evil.example/approvals", "/\\evil.example", "/approvals/../../evil",
		"/approvals/%2F%2Fevil.example", "/\t/evil.example", "javascript:alert(1)", "/approvals?x=https://evil.example",
		"/elsewhere",
	}
	for _, next := range redirects {
		t.Run("open redirect in next "+strconv.Quote(next), func(t *testing.T) {
			resp, body := newBrowser(t, ts.URL).login("alice@example.com", next)
			if resp.StatusCode != http.StatusOK || strings.Contains(body, "evil") || !strings.Contains(body, `content="0;url=/approvals"`) {
				t.Fatalf("next %q: %d, want a page that goes to /approvals\n%s", next, resp.StatusCode, body)
			}
		})
	}

	t.Run("the e-mail form is gone", func(t *testing.T) {
		b := newBrowser(t, ts.URL)
		resp, _ := b.post("/approvals/login", url.Values{"email": {"alice@example.com"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST /approvals/login: %d, want 403 (a decision without a session)", resp.StatusCode)
		}
		if resp, _ := b.get("/approvals"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after posting the old e-mail form the list answers %d, want a redirect to sign in", resp.StatusCode)
		}
	})
	checkCallbackRefusals(t, ts.URL, "mallory@example.com")

	t.Run("sign out", func(t *testing.T) {
		b := newBrowser(t, ts.URL)
		b.signIn("alice@example.com")
		_, list := b.get("/approvals")
		resp, body := b.post("/approvals/logout", url.Values{"csrf": {csrfOf(t, list)}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
			t.Fatalf("sign out: %d\n%s", resp.StatusCode, body)
		}
		if resp, _ := b.get("/approvals"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after sign-out the list answers %d", resp.StatusCode)
		}
	})

	t.Run("a code redeemed without the page's verifier is used up", func(t *testing.T) {
		b := newBrowser(t, ts.URL)
		cb := b.callbackFor("alice@example.com", "")
		u, _ := url.Parse(cb)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
			"redirect_uri": {ts.URL + "/approvals/callback"}, "code_verifier": {strings.Repeat("a", 43)}}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/dev/idp/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("tollgate-approvals", "tollgate-sandbox-idp-secret")
		resp, body := b.do(req)
		// Without the page's verifier the code is refused, and used up.
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
			t.Fatalf("a code redeemed without its verifier: %d %s", resp.StatusCode, body)
		}
		if resp, _ := b.abs(http.MethodGet, cb, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the callback of a code redeemed by someone else: %d, want 401", resp.StatusCode)
		}
	})
}

// checkAuthorizeRedirect: GET /approvals/login sends the browser to the
// IdP's authorization endpoint with an authorization code request that
// carries PKCE (S256), a nonce and a state, and the registered redirect URI.
func checkAuthorizeRedirect(t *testing.T, b *browser, issuer, clientID, redirect string) {
	t.Helper()
	t.Run("login redirects to the IdP with PKCE and a nonce", func(t *testing.T) {
		resp, body := b.get("/approvals/login")
		checkPageHeaders(t, resp)
		u, err := url.Parse(location(t, resp, body))
		if err != nil || !strings.HasPrefix(u.String(), issuer+"/") {
			t.Fatalf("login redirects to %q, want the authorization endpoint of %s", u, issuer)
		}
		q := u.Query()
		want := map[string]string{"response_type": "code", "client_id": clientID, "redirect_uri": redirect, "code_challenge_method": "S256"}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, q.Get(k), v)
			}
		}
		if len(q.Get("code_challenge")) != 43 || len(q.Get("nonce")) < 22 || len(q.Get("state")) < 22 || !strings.Contains(q.Get("scope"), "openid") {
			t.Errorf("authorization request %v: want a 43-character S256 challenge, a nonce, a state and scope openid", q)
		}
		var binding *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "tg_approvals_login" {
				binding = c
			}
		}
		// Lax: the IdP's redirect back is a cross-site navigation.
		if binding == nil || !binding.HttpOnly || binding.SameSite != http.SameSiteLaxMode || binding.Path != "/approvals" || binding.MaxAge > 600 {
			t.Fatalf("sign-in cookie %+v: want HttpOnly, SameSite=Lax, Path=/approvals, at most 10 minutes", binding)
		}
		if strings.Contains(u.RawQuery, binding.Value) {
			t.Fatal("the browser's binding is sent to the IdP")
		}
	})
}

// checkCallbackRefusals: a callback that is not the one this browser's
// sign-in waits for is refused, sets no session, and leaves the browser
// signed out.
func checkCallbackRefusals(t *testing.T, base, email string) {
	t.Helper()
	with := func(cb string, change func(q url.Values)) string {
		u, _ := url.Parse(cb)
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name   string
		run    func(t *testing.T, b *browser) (*http.Response, string)
		status int
	}{
		{"wrong state", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := b.callbackFor(email, "")
			return b.abs(http.MethodGet, with(cb, func(q url.Values) { q.Set("state", "AAAAAAAAAAAAAAAAAAAAAA") }), nil)
		}, http.StatusForbidden},
		{"no state", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := b.callbackFor(email, "")
			return b.abs(http.MethodGet, with(cb, func(q url.Values) { q.Del("state") }), nil)
		}, http.StatusBadRequest},
		{"replayed callback", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := b.callbackFor(email, "")
			// The sign-in completes once, in another browser with the
			// same cookies (a copied cookie jar and URL) ...
			other := newBrowser(t, b.base)
			u, _ := url.Parse(b.base + "/approvals")
			other.c.Jar.SetCookies(u, b.c.Jar.Cookies(u))
			if resp, body := other.abs(http.MethodGet, cb, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("the first callback: %d\n%s", resp.StatusCode, body)
			}
			// ... and never again.
			return b.abs(http.MethodGet, cb, nil)
		}, http.StatusForbidden},
		{"callback of another browser's sign-in (login CSRF)", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := newBrowser(t, b.base).callbackFor(email, "")
			return b.abs(http.MethodGet, cb, nil)
		}, http.StatusForbidden},
		{"code of another sign-in of this browser", func(t *testing.T, b *browser) (*http.Response, string) {
			first, second := b.callbackFor(email, ""), b.callbackFor(email, "")
			code := func(cb string) string { u, _ := url.Parse(cb); return u.Query().Get("code") }
			// The code was issued for the other sign-in's PKCE challenge.
			return b.abs(http.MethodGet, with(first, func(q url.Values) { q.Set("code", code(second)) }), nil)
		}, http.StatusUnauthorized},
		{"answer naming another issuer (mix-up)", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := b.callbackFor(email, "")
			return b.abs(http.MethodGet, with(cb, func(q url.Values) { q.Set("iss", "https://idp.evil.example") }), nil)
		}, http.StatusUnauthorized},
		{"error from the IdP", func(t *testing.T, b *browser) (*http.Response, string) {
			cb := b.callbackFor(email, "")
			return b.abs(http.MethodGet, with(cb, func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }), nil)
		}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, base)
			resp, body := tc.run(t, b)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			checkPageHeaders(t, resp)
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

// TestURLModeApprovalsAreNotApprovedOnThePage: a billing or account-link
// approval is completed on the provider's page it links to; posting
// decision=approve for it is refused and leaves it pending, while Deny
// still works.
func TestURLModeApprovalsAreNotApprovedOnThePage(t *testing.T) {
	a, ts := newApp(t)
	for _, kind := range []gates.Kind{gates.Billing, gates.Authentication} {
		t.Run(string(kind), func(t *testing.T) {
			ap, err := a.Approvals().Create(context.Background(), gates.Approval{
				Binding: gates.Binding{Principal: alicePrincipal, Session: "s1", Tool: "billing_setup", ArgsDigest: "sha256:00"},
				Kind:    kind, Summary: "Add a card at Stripe",
			})
			if err != nil {
				t.Fatal(err)
			}
			alice := newBrowser(t, ts.URL)
			alice.signIn("alice@example.com")
			resp, body := alice.decide(ap.ID, "approve")
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Nothing was done") {
				t.Fatalf("approve: %d\n%s", resp.StatusCode, body)
			}
			if s := statusOf(t, a, ap.ID); s != gates.StatusPending {
				t.Fatalf("after approve on the page the approval is %s, want pending", s)
			}
			if resp, body := alice.decide(ap.ID, "deny"); resp.StatusCode != http.StatusOK || statusOf(t, a, ap.ID) != gates.StatusDenied {
				t.Fatalf("deny: %d\n%s", resp.StatusCode, body)
			}
		})
	}
}
