package main

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var (
	reForm   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	reAttr   = regexp.MustCompile(`(?is)\b(action|method|name|value|type|href)\s*=\s*"([^"]*)"`)
	reInput  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	reButton = regexp.MustCompile(`(?is)<button\b([^>]*)>(.*?)</button>`)
	reLink   = regexp.MustCompile(`(?is)<a\b([^>]*)>(.*?)</a>`)
	reTag    = regexp.MustCompile(`(?s)<[^>]*>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range reAttr.FindAllStringSubmatch(s, -1) {
		k := strings.ToLower(a[1])
		if _, seen := m[k]; !seen {
			m[k] = html.UnescapeString(a[2])
		}
	}
	return m
}

// browse signs in on the approvals page as the human email, opens u, and
// goes through its pages: approve, continue, submit the one form, following
// redirects, until a page asks nothing more.
func browse(email, u string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	// Sign in: the approvals page sends the browser to the sandbox's
	// identity provider, whose "sign in as" page takes the e-mail address
	// and sends it back to the page's callback.
	page, at, err := get(c, *issuer+"/approvals/login")
	if err != nil {
		return fmt.Errorf("sign-in page: %w", err)
	}
	action, form := "", url.Values{}
	for _, f := range reForm.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(f[2], `name="email"`) {
			continue
		}
		action = attrs(f[1])["action"]
		for _, in := range reInput.FindAllString(f[2], -1) {
			if a := attrs(in); a["type"] == "hidden" {
				form.Set(a["name"], a["value"])
			}
		}
	}
	if action == "" {
		return fmt.Errorf("sign-in: no e-mail form at %s", at)
	}
	base, _ := url.Parse(at)
	ref, _ := url.Parse(action)
	form.Set("email", email)
	if _, _, err := post(c, base.ResolveReference(ref).String(), form); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	say("│ the human signs in on %s/approvals/login as %s (at the sandbox's identity provider)", *issuer, email)

	body, at, err := get(c, u)
	if err != nil {
		return err
	}
	visited := map[string]bool{}
	for i := 0; i < 8; i++ {
		next, method, form, label := nextAction(body, at)
		if next == "" {
			say("│ done at %s", at)
			return nil
		}
		key := method + " " + next + " " + form.Encode()
		if visited[key] {
			return fmt.Errorf("the page at %s loops", at)
		}
		visited[key] = true
		say("│ at %s: %s", at, label)
		if method == "GET" {
			body, at, err = get(c, next)
		} else {
			body, at, err = post(c, next, form)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("too many pages after %s", u)
}

// nextAction picks what a human would press on a page: Approve, a Continue
// button or link, or the page's one form.
func nextAction(body, at string) (target, method string, form url.Values, label string) {
	base, _ := url.Parse(at)
	resolve := func(ref string) string {
		if ref == "" {
			return at
		}
		r, err := url.Parse(ref)
		if err != nil {
			return at
		}
		return base.ResolveReference(r).String()
	}
	type cand struct {
		action, method, label string
		form                  url.Values
	}
	var forms []cand
	for _, f := range reForm.FindAllStringSubmatch(body, -1) {
		fa := attrs(f[1])
		if strings.Contains(fa["action"], "logout") {
			continue
		}
		vals := url.Values{}
		for _, in := range reInput.FindAllString(f[2], -1) {
			a := attrs(in)
			if a["name"] == "" || a["type"] == "submit" || ((a["type"] == "checkbox" || a["type"] == "radio") && !strings.Contains(strings.ToLower(in), "checked")) {
				if a["type"] == "checkbox" && a["name"] != "" {
					v := a["value"]
					if v == "" {
						v = "on"
					}
					vals.Set(a["name"], v) // a consenting human ticks the box
				}
				continue
			}
			vals.Set(a["name"], a["value"])
		}
		m := strings.ToUpper(orDefault(fa["method"], "GET"))
		label := "submits the form"
		for _, bt := range reButton.FindAllStringSubmatch(f[2], -1) {
			ba := attrs(bt[1])
			text := strings.TrimSpace(reTag.ReplaceAllString(bt[2], ""))
			if ba["name"] == "decision" && ba["value"] != "approve" {
				continue
			}
			if ba["name"] != "" {
				vals.Set(ba["name"], ba["value"])
			}
			label = fmt.Sprintf("presses %q", text)
			break
		}
		forms = append(forms, cand{resolve(fa["action"]), m, label, vals})
	}
	for _, f := range forms {
		if f.form.Get("decision") == "approve" {
			return f.action, f.method, f.form, f.label
		}
	}
	for _, l := range reLink.FindAllStringSubmatch(body, -1) {
		text := strings.TrimSpace(reTag.ReplaceAllString(l[2], ""))
		if strings.Contains(strings.ToLower(text), "continue") {
			return resolve(attrs(l[1])["href"]), "GET", nil, fmt.Sprintf("follows %q", text)
		}
	}
	for _, f := range forms {
		if strings.Contains(strings.ToLower(f.label), "continue") {
			return f.action, f.method, f.form, f.label
		}
	}
	if len(forms) == 1 && !strings.Contains(forms[0].action, "/dev/idp/") {
		return forms[0].action, forms[0].method, forms[0].form, forms[0].label
	}
	return "", "", nil, ""
}

func get(c *http.Client, u string) (string, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", u, err
	}
	return read(resp)
}

func post(c *http.Client, u string, form url.Values) (string, string, error) {
	resp, err := c.PostForm(u, form)
	if err != nil {
		return "", u, err
	}
	return read(resp)
}

func read(resp *http.Response) (string, string, error) {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	at := resp.Request.URL.String()
	if resp.StatusCode >= 400 {
		return string(b), at, fmt.Errorf("%s: status %d: %s", at, resp.StatusCode, firstLine(reTag.ReplaceAllString(string(b), " ")))
	}
	return string(b), at, nil
}

func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
