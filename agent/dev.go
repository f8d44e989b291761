package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The sandbox's dev identity (`make run`): a user token for any e-mail and
// an attestation for any agent name, from endpoints a sandbox serves on
// loopback only. Production has neither.

// DevLogin returns the sandbox dev IdP's user token for email as a
// subject TokenSource, fetched from issuer's POST /dev/login and fetched
// again shortly before it expires. client may be nil.
func DevLogin(issuer, email string, client *http.Client) oauth2.TokenSource {
	d := &devSource{client: client, url: strings.TrimRight(issuer, "/") + "/dev/login", form: url.Values{"email": {email}}, what: "dev login " + email}
	return oauth2.ReuseTokenSource(nil, d)
}

// DevAttestor returns the sandbox's dev attestation for the agent name
// (spiffe://tollgate.sandbox/agent/<name>) from issuer's POST
// /dev/agent-token, fetched again shortly before it expires. client may be
// nil.
func DevAttestor(issuer, name string, client *http.Client) Attestor {
	d := &devSource{client: client, url: strings.TrimRight(issuer, "/") + "/dev/agent-token", form: url.Values{"name": {name}}, what: "dev agent-token " + name}
	return &devAttestor{src: oauth2.ReuseTokenSource(nil, d)}
}

// devAttestor caches the attestation; ReuseTokenSource is safe for
// concurrent use.
type devAttestor struct{ src oauth2.TokenSource }

func (a *devAttestor) Attestation(context.Context) (string, error) {
	t, err := a.src.Token()
	if err != nil {
		if e := asError(err); e != nil {
			return "", e
		}
		return "", &Error{Op: "attest", Code: NoAttestation, Err: err}
	}
	return t.AccessToken, nil
}

// devSource fetches one dev token.
type devSource struct {
	client *http.Client
	url    string
	form   url.Values
	what   string
}

func (d *devSource) Token() (*oauth2.Token, error) {
	c := d.client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, strings.NewReader(d.form.Encode()))
	if err != nil {
		return nil, &Error{Op: d.what, Code: Misconfigured, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, &Error{Op: d.what, Code: Unreachable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := oauthError(d.what, resp)
		if resp.StatusCode == http.StatusNotFound && e.Code == BadResponse {
			e.Description += " (the dev identity exists only on a sandbox tollgate, reached on loopback)"
		}
		return nil, e
	}
	var body struct {
		Token     string `json:"token"`
		TokenType string `json:"token_type"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Token == "" {
		return nil, &Error{Op: d.what, Code: BadResponse, Status: resp.StatusCode, Description: fmt.Sprintf("%s answered without a token", d.url)}
	}
	t := &oauth2.Token{AccessToken: body.Token, TokenType: "Bearer"}
	if body.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	return t.WithExtra(map[string]any{"issued_token_type": body.TokenType}), nil
}
