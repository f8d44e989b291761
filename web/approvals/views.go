package approvals

import (
	"bytes"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// pageHeaders sets the approvals page's response headers on every answer,
// redirects and refusals included.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Decisions and sign-in must never be served from a cache.
		h.Set("Cache-Control", "no-store")
		// Clickjacking: no one may frame the Approve button.
		h.Set("X-Frame-Options", "DENY")
		// No script at all; forms post only back here.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		// Approval ids in URLs do not leak to other sites. Not no-referrer:
		// with it a browser's form post carries "Origin: null" (Fetch,
		// serializing a request origin), and the decision's same-origin
		// check would refuse every human's Approve.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// views are the page's templates. html/template escapes everything an
// agent wrote (the summary, the fields) for its place in the page.
type views struct{ t *template.Template }

func newViews() *views {
	funcs := template.FuncMap{
		"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"firstLine": func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l },
		"kind":      KindLabel,
	}
	return &views{t: template.Must(template.New("page").Funcs(funcs).Parse(pageTemplates))}
}

// render writes the named page, buffered, so a template error is a clean
// 500 and never half a page.
func (v *views) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := v.t.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "internal error; nothing was done", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

type signedInView struct{ Title, Principal, Next string }

type listView struct {
	Title, Principal, Logout string
	Items                    []human.Approval
}

type detailView struct {
	Title, Principal, Logout, CSRF string
	Approval                       human.Approval
	// Sections are the approval's facts grouped and ordered for reading:
	// who asks, what it is about, the money, then the rest.
	Sections []fieldSection
	Wording  gateWording
}

type fieldSection struct {
	Title string
	Rows  []fieldRow
}

// gateWording is what the page says for a kind of gate: the question, and
// what each button does (only buttons the page shows).
type gateWording struct{ Ask, Approve, Deny string }

type messageView struct{ Title, Principal, Text string }

type fieldRow struct{ Name, Value string }

// fieldOrder groups the fields an approval may carry, in reading order,
// with the label the page shows. Fields not named here follow under
// "Details" in name order.
var fieldOrder = []struct {
	title  string
	fields [][2]string
}{
	{"Who is asking", [][2]string{
		{"human", "for (you)"}, {"agent_chain", "agents (delegation order)"}, {"client", "client"},
		{"task_session", "task session"}, {"parent_session", "parent session"},
	}},
	{"What it is about", [][2]string{
		{"provider", "provider"}, {"item", "item"}, {"domain", "domain"}, {"worker", "Worker"}, {"script", "Worker"},
		{"account", "Cloudflare account"}, {"email", "email"}, {"what", "what"}, {"preview", "preview"},
		{"old", "now in production"}, {"new", "new version"}, {"change", "change"},
		{"terms_url", "terms"}, {"version", "terms version"},
	}},
	{"Money", [][2]string{
		{"price", "price"}, {"month_to_date", "spent this month"}, {"held", "held this month"}, {"cap", "monthly cap"},
		{"cap_left", "left under the cap"}, {"task_budget", "task budget"}, {"task_budget_left", "left of the task budget"},
	}},
}

// fieldSections are an approval's fields in fieldOrder, then the rest.
func fieldSections(m map[string]string) []fieldSection {
	seen := map[string]bool{}
	var out []fieldSection
	for _, g := range fieldOrder {
		var rows []fieldRow
		for _, f := range g.fields {
			if v, ok := m[f[0]]; ok && !seen[f[0]] {
				seen[f[0]] = true
				rows = append(rows, fieldRow{Name: f[1], Value: v})
			}
		}
		if len(rows) > 0 {
			out = append(out, fieldSection{Title: g.title, Rows: rows})
		}
	}
	var rest []fieldRow
	for _, n := range slices.Sorted(maps.Keys(m)) {
		if !seen[n] {
			rest = append(rest, fieldRow{Name: strings.ReplaceAll(n, "_", " "), Value: m[n]})
		}
	}
	if len(rest) > 0 {
		out = append(out, fieldSection{Title: "Details", Rows: rest})
	}
	return out
}

// wording is the page's text for a kind of gate.
func wording(k human.Kind) gateWording {
	switch k {
	case human.Purchase:
		return gateWording{Ask: "An agent acting for you wants to buy something with your money.",
			Approve: "Approve lets the agent make exactly this purchase once, at the price shown.",
			Deny:    "Deny means nothing is bought and nothing is charged."}
	case human.Production:
		return gateWording{Ask: "An agent acting for you wants to change what is live in production.",
			Approve: "Approve lets the agent promote exactly this version once.",
			Deny:    "Deny means production stays as it is."}
	case human.Terms:
		return gateWording{Ask: "An agent acting for you wants you to accept a provider's terms of service.",
			Approve: "Approve accepts these terms, in this version, for you; you are not asked again for this version.",
			Deny:    "Deny means you do not accept them, and nothing that needs them is done."}
	case human.CapRaise:
		return gateWording{Ask: "An agent acting for you wants to raise your monthly spend cap.",
			Approve: "Approve raises the cap as shown, once.",
			Deny:    "Deny keeps the cap as it is."}
	case human.Billing:
		return gateWording{Ask: "An agent acting for you needs a payment method on file.",
			Deny: "Deny means no payment method is added and nothing is charged."}
	case human.Authentication:
		return gateWording{Ask: "An agent acting for you needs access to your account at a provider.",
			Deny: "Deny means no access is granted and nothing is done."}
	}
	return gateWording{Ask: "An agent acting for you asked:", Approve: "Approve lets the agent make exactly this call once.",
		Deny: "Deny means nothing is done."}
}

// KindLabel is how the page names a kind of approval.
func KindLabel(k human.Kind) string {
	switch k {
	case human.Authentication:
		return "Sign-in at a provider"
	case human.Terms:
		return "Terms of service"
	case human.Billing:
		return "Billing setup"
	case human.Production:
		return "Change to production"
	case human.Purchase:
		return "Purchase"
	case human.CapRaise:
		return "Spend cap raise"
	}
	return string(k)
}

// StoreError answers a refusal or failure of the approvals store.
func (p *Page) StoreError(w http.ResponseWriter, err error) {
	switch fault.CodeOf(err) {
	case fault.NotFound, human.ApprovalForbidden:
		p.NotFound(w)
	case fault.Unavailable:
		p.Unavailable(w, err)
	case fault.InvalidArgument:
		p.Message(w, http.StatusBadRequest, "Bad request", fault.PublicOf(err))
	default:
		p.cfg.Log.Error("approvals page: store failed", "err", err)
		p.Message(w, http.StatusInternalServerError, "Error", "Something went wrong; nothing was done. Retry, or ask the operator.")
	}
}

// NotFound answers 404 without saying whose the approval is, or whether
// it exists.
func (p *Page) NotFound(w http.ResponseWriter) {
	p.Message(w, http.StatusNotFound, "Not found", "There is no such approval for you. Check the link, or sign in as the person the agent acts for.")
}

// Forbidden answers 403 to a form or callback that is not this session's.
func (p *Page) Forbidden(w http.ResponseWriter) {
	p.Message(w, http.StatusForbidden, "Refused", "This form was not sent from this page's current session, or it is too old. Nothing was done. Open the page again and retry.")
}

// Unavailable answers 503 when the store cannot be reached; err is logged,
// never shown.
func (p *Page) Unavailable(w http.ResponseWriter, err error) {
	p.cfg.Log.Warn("approvals page: Unavailable", "err", err)
	p.Message(w, http.StatusServiceUnavailable, "Unavailable", "tollgate cannot reach its store right now; nothing was done. Retry shortly.")
}

// Message answers a page with a title and one paragraph.
func (p *Page) Message(w http.ResponseWriter, status int, title, text string) {
	p.views.render(w, status, "message", messageView{Title: title, Text: text})
}

const pageTemplates = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · tollgate approvals</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
header{display:flex;justify-content:space-between;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1.5rem}
h1{font-size:1.4rem}
h2{font-size:1.05rem;margin:1.4rem 0 .2rem}
pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f4;padding:1rem;border-radius:4px;font:15px/1.5 ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
th{width:12rem;font-weight:600}
button{font:inherit;padding:.5rem 1.4rem;margin-right:.6rem;border-radius:4px;border:1px solid #555;cursor:pointer}
.approve{background:#1d6b32;color:#fff;border-color:#1d6b32}
.deny{background:#fff;color:#8b1a1a;border-color:#8b1a1a}
.problem{background:#fbeaea;border:1px solid #d99;padding:.6rem 1rem;border-radius:4px}
.muted{color:#666;font-size:.9rem}
input,textarea{font:inherit;width:100%;box-sizing:border-box;padding:.4rem}
form.inline{display:inline}
</style></head><body>
<header><strong>tollgate approvals</strong>{{with .Principal}}<span class="muted">signed in as {{.}}</span>{{end}}</header>
{{end}}

{{define "foot"}}</body></html>
{{end}}

{{define "signout"}}{{if .Logout}}<form class="inline" method="post" action="/approvals/logout"><input type="hidden" name="csrf" value="{{.Logout}}"><button type="submit">Sign out</button></form>{{end}}{{end}}

{{define "signedin"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={{.Next}}">
<title>{{.Title}} · tollgate approvals</title></head><body>
<p>Signed in as {{.Principal}}. <a href="{{.Next}}">Continue</a></p>
</body></html>
{{end}}

{{define "list"}}{{template "head" .}}
<h1>Pending approvals</h1>
{{if .Items}}<table>
<tr><th>What</th><th>Asked</th><th>Expires</th></tr>
{{range .Items}}<tr><td><a href="/approvals/{{.ID}}">{{kind .Kind}}: {{firstLine .Summary}}</a><br><span class="muted">{{.Binding.Tool}}</span></td><td>{{when .Created}}</td><td>{{when .Expires}}</td></tr>
{{end}}</table>
{{else}}<p>Nothing is waiting for you.</p>{{end}}
<div>{{template "signout" .}}</div>
{{template "foot"}}{{end}}

{{define "detail"}}{{template "head" .}}
<h1 id="kind">{{kind .Approval.Kind}}</h1>
<p id="ask">{{.Wording.Ask}}</p>
{{range .Sections}}<h2>{{.Title}}</h2>
<table>
{{range .Rows}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
{{end}}
{{with .Approval}}<h2>What the agent asked, word for word</h2>
<pre id="summary">{{.Summary}}</pre>
<table>
<tr><th>tool</th><td>{{.Binding.Tool}}</td></tr>
<tr><th>task session</th><td>{{.Binding.Session}}</td></tr>
<tr><th>asked</th><td>{{when .Created}}</td></tr>
<tr><th>expires</th><td>{{when .Expires}}</td></tr>
<tr><th>status</th><td id="status">{{.Status}}{{with .DecidedBy}} ({{.}}){{end}}</td></tr>
</table>{{end}}
{{if .CSRF}}
{{if eq (print .Approval.Kind) "billing"}}<p><a class="approve" href="/approvals/{{.Approval.ID}}/billing">Continue to Stripe</a> <span class="muted">to add a payment method on Stripe's page; this approval completes when Stripe confirms it.</span></p>
{{else if eq (print .Approval.Kind) "authentication"}}<p><a class="approve" href="/approvals/{{.Approval.ID}}/cloudflare">Continue to Cloudflare</a> <span class="muted">to sign in there and allow access; this approval completes when Cloudflare confirms it.</span></p>
{{end}}
<form method="post" action="/approvals/{{.Approval.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if not .Approval.Kind.URLMode}}<button class="approve" type="submit" name="decision" value="approve">Approve</button>{{end}}
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="muted" id="footer">{{if .Approval.Kind.URLMode}}The approval completes when the provider confirms it on its own page. {{else}}{{.Wording.Approve}} {{end}}{{.Wording.Deny}}</p>
{{else}}<p>This approval is {{.Approval.Status}}; it can no longer be decided here.</p>{{end}}
<p><a href="/approvals">All pending approvals</a></p>
<div>{{template "signout" .}}</div>
{{template "foot"}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
<p><a href="/approvals">Pending approvals</a></p>
{{template "foot"}}{{end}}
`
