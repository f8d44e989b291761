package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Transport is an http.RoundTripper that sends each request with the
// TokenSource's current task token as its bearer token. On a 401 it
// exchanges once more and retries once, when the request's body can be
// replayed (none, or GetBody set, as for any body http.NewRequest made from
// bytes or a string; mcp-go's Streamable HTTP client sends those). A 401
// saying the task session was revoked is not retried: the TokenSource
// stops and the request fails with SessionRevoked.
//
// The token goes only to Origin (default: the Source's Issuer's scheme
// and host, where tollgate serves /mcp): a request anywhere else, a
// redirect included, fails without being sent.
type Transport struct {
	Source *TokenSource
	// Base makes the requests; default http.DefaultTransport.
	Base http.RoundTripper
	// Origin is where the token may be sent, e.g. https://tollgate.example.
	Origin string
}

var _ http.RoundTripper = (*Transport)(nil)

// HTTPClient returns an *http.Client that authenticates with ts, for
// mcp-go's transport.WithHTTPBasicClient. It has no timeout of its own:
// MCP streams can be long; bound calls with their contexts (or with
// transport.WithHTTPTimeout).
func (ts *TokenSource) HTTPClient() *http.Client {
	return &http.Client{Transport: &Transport{Source: ts}}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if origin := t.origin(); !strings.EqualFold(req.URL.Scheme+"://"+req.URL.Host, origin) {
		closeBody()
		return nil, &Error{Op: "send", Code: Misconfigured,
			Description: fmt.Sprintf("refusing to send the task token to %s://%s; it is only for %s (set Transport.Origin if tollgate serves MCP elsewhere)", req.URL.Scheme, req.URL.Host, origin)}
	}
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		closeBody()
		return nil, err
	}
	// RoundTrippers must not change the caller's request (net/http).
	first := req.Clone(req.Context())
	first.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if revoked(resp) {
		t.Source.stop(&Error{Op: "token", Code: SessionRevoked, Status: http.StatusUnauthorized,
			Description: "tollgate says the task session has been revoked"})
		resp.Body.Close()
		return nil, t.Source.stoppedErr()
	}
	replay, ok := replayable(req)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()

	t.Source.invalidate(tok.AccessToken)
	fresh, err := t.Source.TokenContext(req.Context())
	if err != nil {
		return nil, err
	}
	body, err := replay()
	if err != nil {
		return nil, err
	}
	second := req.Clone(req.Context())
	second.Body = body
	second.Header.Set("Authorization", "Bearer "+fresh.AccessToken)
	return base.RoundTrip(second)
}

func (t *Transport) origin() string {
	if t.Origin != "" {
		return strings.TrimRight(t.Origin, "/")
	}
	u, err := url.Parse(t.Source.cfg.Issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// replayable returns how to get the request's body again, if it can.
func replayable(req *http.Request) (func() (io.ReadCloser, error), bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return func() (io.ReadCloser, error) { return req.Body, nil }, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	return req.GetBody, true
}

// revoked reports whether a 401 says the task session was revoked; the
// body is kept readable for the caller.
func revoked(resp *http.Response) bool {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var p struct {
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(b, &p)
	for _, s := range []string{p.Description, resp.Header.Get("WWW-Authenticate")} {
		// tollgate's words for a revoked session (sessions.errRevoked);
		// a revoked single token may be replaced by a new exchange.
		if strings.Contains(s, "session has been revoked") {
			return true
		}
	}
	return false
}

func (ts *TokenSource) stoppedErr() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.stoppedBy
}
