package compose

import (
	"context"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools"
)

// StdioCredentials decides where a stdio server's task token comes from
// (SPEC §2): TOLLGATE_TOKEN, else TOLLGATE_TOKEN_FILE (re-read on every
// call, so a rotated file takes effect at once), else — in sandbox mode
// only — a session minted for the local OS user, with the parent process
// (the MCP client that launched us) attested as the agent. It returns the
// minted session's id ("" when a token was given).
func (a *App) StdioCredentials(ctx context.Context, getenv func(string) string) (tools.Credentials, string, error) {
	if tok := getenv("TOLLGATE_TOKEN"); tok != "" {
		tok = strings.TrimSpace(tok)
		return func(context.Context) (string, error) { return tok, nil }, "", nil
	}
	if path := getenv("TOLLGATE_TOKEN_FILE"); path != "" {
		if _, err := os.Stat(path); err != nil {
			return nil, "", fault.Wrap(err, fault.InvalidArgument, "TOLLGATE_TOKEN_FILE "+path+" cannot be read")
		}
		return func(context.Context) (string, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fault.Wrap(err, fault.Unauthenticated, "TOLLGATE_TOKEN_FILE cannot be read; nothing was done")
			}
			return strings.TrimSpace(string(b)), nil
		}, "", nil
	}
	if a.Cfg.Mode != config.Sandbox {
		return nil, "", fault.New(fault.Unauthenticated, "production stdio needs a task token: set TOLLGATE_TOKEN or TOLLGATE_TOKEN_FILE")
	}
	att, err := auth.NewUnixAttestor(auth.UnixAttestorConfig{})
	if err != nil {
		return nil, "", err
	}
	agent, err := att.Attest(ctx, auth.StdioEvidence())
	if err != nil {
		return nil, "", err
	}
	principal := localPrincipal()
	grant := sts.LocalGrant{Principal: principal, Agent: agent, Scopes: sts.KnownScopes()}
	// The local user's own Cloudflare account in the sandbox's fake, and
	// the domains this session may change (none: it may only read).
	if _, _, _, err := a.linkSandboxAccount(ctx, strings.TrimPrefix(principal, "user:")); err != nil {
		return nil, "", err
	}
	if len(a.LocalDomains) > 0 {
		if grant.Details, err = localDetails(a.LocalDomains); err != nil {
			return nil, "", err
		}
	}
	resp, err := a.id.sts.Mint(ctx, grant)
	if err != nil {
		return nil, "", err
	}
	c, err := a.id.access.Verify(ctx, resp.AccessToken)
	if err != nil {
		return nil, "", err
	}
	l := &localToken{a: a, tok: resp.AccessToken, claims: c}
	l.remint = func(ctx context.Context) (string, error) {
		r, err := a.id.sts.Mint(ctx, grant)
		if err != nil {
			return "", err
		}
		a.Log.Info("the local session expired while idle; minted a new one", "session", r.SessionID)
		return r.AccessToken, nil
	}
	return l.get, resp.SessionID, nil
}

// localBudget is the task budget per provider of a sandbox local session
// that names domains: the sandbox's fake money, up to the default cap.
var localBudget = money.Money{Minor: 100_00, Currency: "usd"}

// localDetails are the authorization_details of a local session limited
// to domains, with a budget at each provider.
func localDetails(domains []string) (auth.AuthorizationDetails, error) {
	r, err := auth.ResourcesDetail(domains...)
	if err != nil {
		return nil, err
	}
	out := auth.AuthorizationDetails{r}
	for _, p := range []string{"cloudflare", "stripe"} {
		d, err := auth.SpendDetail(p, localBudget)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// localToken renews the minted session's token shortly before it expires,
// for the same session: a revoke of it stays final.
type localToken struct {
	a      *App
	mu     sync.Mutex
	tok    string
	claims *auth.Claims
	remint func(context.Context) (string, error)
}

func (l *localToken) get(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Until(l.claims.Expiry.Time()) > 30*time.Second {
		return l.tok, nil
	}
	tok, err := l.a.id.sts.Reissue(ctx, l.claims)
	if fault.CodeOf(err) == fault.SessionExpired && l.remint != nil {
		// Idle past the session's life (not revoked: that stays final):
		// a new local session for the same attested parent.
		tok, err = l.remint(ctx)
	}
	if err != nil {
		return "", err
	}
	c, err := l.a.id.access.Verify(ctx, tok)
	if err != nil {
		return "", err
	}
	l.tok, l.claims = tok, c
	return tok, nil
}

func localPrincipal() string {
	name := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "user:" + name + "@localhost"
}
