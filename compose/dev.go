//go:build !nosandbox

package compose

// The dev endpoints (sandbox.go routes them). A production build
// (-tags nosandbox) has neither the routes nor this code.

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/httpx"
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
		forwarded := false
		for _, h := range proxyHeaders {
			forwarded = forwarded || r.Header.Get(h) != ""
		}
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

// proxyHeaders are what proxies and CDNs add to a forwarded request.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
	"X-Client-Ip", "X-Cluster-Client-Ip", "X-Original-Forwarded-For", "True-Client-Ip", "Cf-Connecting-Ip",
	"Fastly-Client-Ip", "Via"}

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
