package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/tools"
)

// system is what the bench measures: the App on its HTTP listener, and the
// guard-less baseline on its own.
type system struct {
	app  *compose.App
	srv  *httptest.Server // the App's whole HTTP surface
	bare *server.MCPServer
	bsrv *httptest.Server // the baseline's /mcp
	http *http.Client     // for the OAuth and dev endpoints
}

// newSystem builds a sandbox App on redisURL, served on a loopback listener
// whose address is the configured public URL, plus the baseline.
func newSystem(ctx context.Context, redisURL string) (*system, error) {
	s := &system{http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}}
	s.srv = httptest.NewUnstartedServer(nil)
	cfg := config.Default()
	cfg.Addr = s.srv.Listener.Addr().String()
	cfg.RedisURL = redisURL
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := compose.New(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	s.app = a
	s.srv.Config.Handler = a.Handler()
	s.srv.Start()

	// The baseline: the very tool the App registers (same constructor, same
	// catalog), on an MCP server with the App's options, registered with no
	// middleware. Over HTTP it gets the App's transport options and the
	// same Host/Origin and body-size wrappers, so the difference between
	// the two is the token edge and the tool middleware: the guard.
	s.bare = tools.NewUnguardedServer([]server.ServerOption{
		server.WithTitle("tollgate baseline (no guard)"),
		server.WithToolCapabilities(false),
		server.WithLogging(),
		server.WithRecovery(),
		server.WithStrictInputSchemaDefault(),
	}, "tollgate-baseline", compose.Version, tools.CatalogGet(a.Catalog))
	s.bsrv = httptest.NewUnstartedServer(nil)
	baddr := s.bsrv.Listener.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s.bare,
		server.WithEventStore(server.NewInMemoryEventStore())))
	guard := httpx.NewGuard([]string{baddr}, []string{"http://" + baddr})
	s.bsrv.Config.Handler = guard.Wrap(httpx.LimitBody(cfg.MaxBodyBytes, mux))
	s.bsrv.Start()
	return s, nil
}

func (s *system) close() {
	if s.bsrv != nil {
		s.bsrv.Close()
	}
	if s.srv != nil {
		s.srv.Close()
	}
	if s.app != nil {
		_ = s.app.Close()
	}
}

// post sends a form to the App and decodes the JSON answer.
func (s *system) post(ctx context.Context, path string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

// devTokens returns a dev user token and a dev agent attestation, reusable
// for many exchanges (both live an hour).
func (s *system) devTokens(ctx context.Context, email, agent string) (user, actor string, err error) {
	var u, a struct {
		Token string `json:"token"`
	}
	if err := s.post(ctx, "/dev/login", url.Values{"email": {email}}, &u); err != nil {
		return "", "", err
	}
	if err := s.post(ctx, "/dev/agent-token", url.Values{"name": {agent}}, &a); err != nil {
		return "", "", err
	}
	return u.Token, a.Token, nil
}

// exchangeForm is an RFC 8693 delegation request: the dev user's token as
// subject, the dev agent's attestation as actor.
func exchangeForm(user, actor, scope, details string) url.Values {
	f := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {user},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"actor_token":        {actor},
		"actor_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"scope":              {scope},
	}
	if details != "" {
		f.Set("authorization_details", details)
	}
	return f
}

// exchange runs one token exchange and returns the task token.
func (s *system) exchange(ctx context.Context, form url.Values) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.post(ctx, "/oauth/token", form, &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("exchange: no access_token in the answer")
	}
	return out.AccessToken, nil
}

// taskToken is a fresh task token for a dev user and agent.
func (s *system) taskToken(ctx context.Context, email, scope, details string) (string, error) {
	user, actor, err := s.devTokens(ctx, email, "bench")
	if err != nil {
		return "", err
	}
	return s.exchange(ctx, exchangeForm(user, actor, scope, details))
}
