package compose

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/web/edge"
	"github.com/tollgate-dev/tollgate/webhooks/stripehook"
)

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	mcpHTTP := server.NewStreamableHTTPServer(a.mcp,
		// Legacy (2025-11-25) clients keep a session id (the default
		// generating manager, valid across replicas); an event store keeps
		// their progress notifications from being dropped.
		server.WithEventStore(server.NewInMemoryEventStore()),
		// An idle legacy session is closed and its memory freed; the
		// edge stops counting it against its principal after as long.
		server.WithSessionIdleTTL(a.Cfg.MCPSessionIdle),
		server.WithStreamableHTTPLogger(a.Log),
	)
	// A client's W3C traceparent makes the call's spans its children.
	mux.Handle("/mcp", observe.Extract(a.web.edge.Wrap(mcpHTTP)))
	mux.Handle(edge.MetadataPath, server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
		Resource:               a.Cfg.ResourceURL(),
		AuthorizationServers:   []string{a.Cfg.PublicURL},
		ScopesSupported:        sts.KnownScopes(),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "tollgate",
	}))
	mux.HandleFunc("/oauth/token", a.id.sts.Token)
	mux.HandleFunc("/oauth/introspect", a.id.sts.Introspect)
	mux.HandleFunc("/oauth/revoke", a.id.sts.Revoke)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", a.id.sts.Metadata)
	mux.HandleFunc("GET /.well-known/jwks.json", a.id.sts.JWKS)
	a.sandboxRoutes(mux)
	a.web.approvals.Mount(mux)
	a.web.flows.Mount(mux)
	whsec := a.Cfg.StripeWebhookSecret
	if whsec == "" && a.sandbox != nil {
		whsec = a.sandbox.webhookSecret()
	}
	mux.Handle("/webhooks/stripe", &stripehook.Handler{Secret: whsec, Ledger: a.money.ledger,
		Trail: a.id.trail, Redis: a.Redis.Client, Log: a.Log,
		Wait:  fuse.Wait{Replicas: a.Cfg.RedisWaitReplicas, Timeout: a.Cfg.RedisWaitTimeout},
		Short: func(int) { a.Observe.RedisWaitShort("renewal") }})
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	if a.Cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", a.MetricsHandler())
	}
	mux.HandleFunc("GET /v1/catalog", a.catalogHTTP)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Fail(w, http.StatusNotFound, "not_found", "no such endpoint; MCP is served at /mcp, the catalog at /v1/catalog")
	})
	guard := httpx.NewGuard(a.Cfg.AllowedHosts, a.Cfg.AllowedOrigins)
	// Anyone may send a body to the OAuth endpoints and pages, token or
	// not: those bodies are small forms, so they get a small limit. /mcp
	// reads its (larger) body only once the bearer token is verified and
	// the principal has a place in flight (web/edge); a provider's
	// signed webhook may be as large as --max-body-bytes.
	anonymous := httpx.LimitBodyWithin(min(a.Cfg.MaxBodyBytes, anonymousBodyLimit), a.Cfg.BodyTimeout, mux)
	full := httpx.LimitBodyWithin(a.Cfg.MaxBodyBytes, a.Cfg.BodyTimeout, mux)
	return guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/mcp":
			mux.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/webhooks/"):
			full.ServeHTTP(w, r)
		default:
			anonymous.ServeHTTP(w, r)
		}
	}))
}

// anonymousBodyLimit bounds a body read before anyone is authenticated:
// token exchange forms, approval decisions, sign-in callbacks.
const anonymousBodyLimit = 64 << 10

// MetricsHandler serves the Prometheus metrics, behind --metrics-token
// when one is set.
func (a *App) MetricsHandler() http.Handler {
	h := a.Observe.Handler()
	if a.Cfg.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + a.Cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate metrics"`)
			httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "send the metrics token (--metrics-token) as Authorization: Bearer <token>")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// healthz is liveness: the process is up and serving HTTP. It reads
// nothing, so an outage of Redis does not get every replica restarted
// (readiness, /readyz, takes them out of the load balancer instead).
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "mode": string(a.Cfg.Mode), "version": Version})
}

// readyz is readiness: Redis answers a PING within a second, and every
// signing key of this replica is published (so the tokens it signs can be
// verified by every replica, and /.well-known/jwks.json lists them).
// 503 names what is missing, never an address or a secret.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	body := map[string]string{"status": "ready", "redis": "ok", "keys": "published", "mode": string(a.Cfg.Mode), "version": Version}
	ready := true
	if err := a.Redis.Client.Ping(ctx).Err(); err != nil {
		a.Log.Warn("readyz: redis ping failed", "err", err)
		body["redis"], ready = "unreachable", false
	}
	now := time.Now()
	for _, k := range a.id.rings {
		if !k.PublishedUntil().After(now) {
			body["keys"], ready = "unpublished", false
		}
	}
	if !ready {
		body["status"] = "unavailable"
		httpx.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

func (a *App) catalogHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, provider := q.Get("q"), strings.ToLower(q.Get("provider"))
	if len(query) > 200 {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "q is longer than 200 characters; search with a few words")
		return
	}
	if provider != "" && provider != "cloudflare" && provider != "stripe" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "provider must be cloudflare or stripe")
		return
	}
	found := a.Catalog.Search(query, provider)
	if found == nil {
		found = []catalog.Service{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"services": found, "count": len(found), "prices_as_of": a.Catalog.PricesAsOf(),
	})
}
