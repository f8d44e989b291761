package app

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// devTTL is the lifetime of dev IdP user tokens and dev agent attestations.
const devTTL = time.Hour

// devOnly serves h only in sandbox mode and only to loopback callers: the
// dev IdP hands out identities to whoever asks, which is fine on a laptop
// and nowhere else.
func (a *App) devOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		// A tunnel or reverse proxy on this machine also connects from
		// loopback: refuse anything that was forwarded, or addressed to a
		// name other than a loopback one.
		forwarded := r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" ||
			r.Header.Get("X-Forwarded-Host") != "" || r.Header.Get("X-Real-Ip") != ""
		if a.id.dev == nil || ip == nil || !ip.IsLoopback() || forwarded || !loopbackHost(r.Host) {
			httpx.Fail(w, http.StatusNotFound, "not_found", "no such endpoint; the dev identity exists only in sandbox mode, on loopback")
			return
		}
		if err := r.ParseForm(); err != nil {
			httpx.Fail(w, http.StatusBadRequest, "invalid_request", "the form body is malformed")
			return
		}
		h(w, r)
	}
}

// devLogin serves POST /dev/login (email=…[&scope=…]): a user token of the
// dev IdP, with the sandbox's scopes unless fewer are asked for.
func (a *App) devLogin(w http.ResponseWriter, r *http.Request) {
	scopes := sts.KnownScopes()
	if s := strings.Fields(r.PostForm.Get("scope")); len(s) > 0 {
		scopes = s
	}
	tok, err := a.id.dev.UserToken(r.PostForm.Get("email"), scopes, devTTL)
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, string(fault.CodeOf(err)), fault.PublicOf(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "token_type": sts.TokenTypeIDToken, "expires_in": int(devTTL.Seconds())})
}

// devAgentToken serves POST /dev/agent-token (name=…): a workload
// attestation for spiffe://tollgate.sandbox/agent/<name>.
func (a *App) devAgentToken(w http.ResponseWriter, r *http.Request) {
	tok, err := a.id.dev.AgentToken(r.PostForm.Get("name"), devTTL)
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, string(fault.CodeOf(err)), fault.PublicOf(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "token_type": sts.TokenTypeJWT, "expires_in": int(devTTL.Seconds())})
}

// devCloudflareCharges serves GET /dev/cloudflare/charges: what the
// sandbox's fake Cloudflare has charged, so a script (or a test across
// processes) can compare spend_status with the provider's own record.
func (a *App) devCloudflareCharges(w http.ResponseWriter, r *http.Request) {
	type charge struct {
		Domain  string `json:"domain"`
		Years   int    `json:"years"`
		Price   any    `json:"price"`
		Account string `json:"account_id"`
	}
	out := []charge{}
	for _, c := range a.money.fakeCF.Charges() {
		out = append(out, charge{Domain: c.Domain, Years: c.Years, Price: c.Price, Account: c.Account})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"charges": out})
}

// devCloudflareScripts serves GET /dev/cloudflare/scripts?account=ID: the
// Worker scripts of one account of the sandbox's fake by name with their
// SHA-256, so a script can see what is live. Each account has its own
// Workers: without ?account, the answer lists every account's, by account.
func (a *App) devCloudflareScripts(w http.ResponseWriter, r *http.Request) {
	scripts := func(acct string) map[string]string {
		out := map[string]string{}
		for name, s := range a.money.fakeCF.ScriptsIn(acct) {
			out[name] = s.SHA256
		}
		return out
	}
	if acct := r.URL.Query().Get("account"); acct != "" {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"account": acct, "scripts": scripts(acct)})
		return
	}
	all := map[string]map[string]string{}
	for _, acct := range a.money.fakeCF.Accounts() {
		if s := scripts(acct.ID); len(s) > 0 {
			all[acct.ID] = s
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"accounts": all})
}

// devLinkCloudflare serves POST /dev/cloudflare/link (email=…): the
// sandbox's shortcut for what billing_setup and account_connect do with a
// human in the loop. It links the dev user's Cloudflare account in the
// fake — the existing one for that e-mail as if its owner allowed
// tollgate on the consent page, else a new one as if they accepted the
// terms — and records its zones. Like the dev IdP, it exists only in the
// sandbox and only for loopback callers.
func (a *App) devLinkCloudflare(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	if _, err := a.id.dev.UserToken(email, nil, time.Minute); err != nil || email == "" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "email must be an e-mail address the dev identity provider accepts")
		return
	}
	acct, created, zones, err := a.linkSandboxAccount(r.Context(), email)
	if err != nil {
		httpx.Fail(w, http.StatusBadGateway, string(fault.CodeOf(err)), fault.PublicOf(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"principal": "user:" + email, "account_id": acct, "created": created, "zones": zones})
}

// linkSandboxAccount links user:email to its own account in the sandbox's
// fake Cloudflare: the existing one for email, by a consent grant, else a
// new one; and records the account's zones.
func (a *App) linkSandboxAccount(ctx context.Context, email string) (account string, created bool, zones int, err error) {
	fake := a.money.fakeCF
	if fake == nil {
		return "", false, 0, fault.New(fault.Internal, "only the sandbox links accounts without a human")
	}
	var link links.CloudflareLink
	_, exists := fake.AccountForEmail(email)
	if exists {
		ans, err := fake.GrantConsent(email, sandboxOAuthClientID, strings.Join(cloudflareScopes, " "))
		if err != nil {
			return "", false, 0, fault.Wrap(err, fault.Internal, "the sandbox's Cloudflare did not grant access")
		}
		acct, _ := ans["account_id"].(string)
		access, _ := ans["access_token"].(string)
		refresh, _ := ans["refresh_token"].(string)
		secs, _ := ans["expires_in"].(int)
		link = links.CloudflareLink{AccountID: acct, Token: &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "bearer",
			Expiry: time.Now().Add(time.Duration(secs) * time.Second)}}
	} else {
		cfg, err := a.accountConfig()
		if err == nil {
			link, err = cfg.Directory.CreateAccount(ctx, email, email+" (tollgate)", fake.TermsVersion())
		}
		if err != nil {
			return "", false, 0, err
		}
	}
	in, err := a.money.cloudflare.As(cloudflare.Credential{AccountID: link.AccountID, Token: oauth2.StaticTokenSource(link.Token)})
	if err != nil {
		return "", false, 0, err
	}
	list, err := in.ListZones(ctx)
	if err != nil {
		return "", false, 0, err
	}
	refs := make([]links.ZoneRef, 0, len(list))
	for _, z := range list {
		refs = append(refs, links.ZoneRef{Name: z.Name, ID: z.ID, AccountID: link.AccountID})
	}
	if err := a.links.LinkCloudflare(ctx, "user:"+email, link, refs); err != nil {
		return "", false, 0, err
	}
	return link.AccountID, !exists, len(refs), nil
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// devRedis serves GET /dev/redis: the embedded Redis's loopback URL, so the
// CLI and the demo can reach a `make run` sandbox started elsewhere. Only
// the sandbox has it, and only loopback callers get it.
func (a *App) devRedis(w http.ResponseWriter, r *http.Request) {
	if !a.Redis.Embedded {
		httpx.Fail(w, http.StatusNotFound, "not_found", "this server uses an external Redis; its operator knows the URL")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"url": a.Redis.URL})
}
