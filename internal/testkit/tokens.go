package testkit

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Grant describes a token exchange for tests.
type Grant struct {
	Email   string // dev IdP user; default alice@example.com
	Agent   string // dev agent name; default "agent"
	Scope   string // requested scope; empty asks for none (the default narrowing)
	Details string // authorization_details JSON
	Subject string // an upstream task token instead of a dev user token
}

// DevLogin asks a sandbox server's dev IdP for a user token.
func DevLogin(t testing.TB, base, email string) string {
	t.Helper()
	return devToken(t, base+"/dev/login", url.Values{"email": {email}})
}

// DevAgentToken asks a sandbox server for a dev agent's attestation.
func DevAgentToken(t testing.TB, base, name string) string {
	t.Helper()
	return devToken(t, base+"/dev/agent-token", url.Values{"name": {name}})
}

func devToken(t testing.TB, u string, form url.Values) string {
	t.Helper()
	return postDev(t, u, form, "token")
}

// LinkAccount links the dev user email to their own Cloudflare account in
// a sandbox server's fake (tollgate dev link-account) and returns its id.
func LinkAccount(t testing.TB, base, email string) string {
	t.Helper()
	return postDev(t, base+"/dev/cloudflare/link", url.Values{"email": {email}}, "account_id")
}

// postDev posts form to a sandbox dev endpoint and returns the string
// field of its JSON answer, failing the test unless it is 200 with one.
func postDev(t testing.TB, u string, form url.Values, field string) string {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatalf("testkit: %s: %v", u, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	v, _ := body[field].(string)
	if err != nil || resp.StatusCode != 200 || v == "" {
		t.Fatalf("testkit: %s: status %d, no %s, %v", u, resp.StatusCode, field, err)
	}
	return v
}

// Exchange runs the RFC 8693 exchange against a server and returns the
// decoded response and status.
func Exchange(t testing.TB, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testkit: exchange: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TaskToken logs a dev user in, attests a dev agent and exchanges, failing
// the test unless a task token comes back.
func TaskToken(t testing.TB, base string, g Grant) string {
	t.Helper()
	if g.Email == "" {
		g.Email = "alice@example.com"
	}
	if g.Agent == "" {
		g.Agent = "agent"
	}
	form := url.Values{
		"grant_type":       {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"actor_token":      {DevAgentToken(t, base, g.Agent)},
		"actor_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
	}
	if g.Subject != "" {
		form.Set("subject_token", g.Subject)
		form.Set("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
	} else {
		form.Set("subject_token", DevLogin(t, base, g.Email))
		form.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")
	}
	if g.Scope != "" {
		form.Set("scope", g.Scope)
	}
	if g.Details != "" {
		form.Set("authorization_details", g.Details)
	}
	status, body := Exchange(t, base, form)
	tok, _ := body["access_token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("testkit: exchange: %d %v", status, body)
	}
	return tok
}

// Bearer returns the Authorization header map for a token.
func Bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
