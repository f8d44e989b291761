package compose

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/gates/phase"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/flowstate"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/internal/mcpsession"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/internal/redisconn"
	"github.com/tollgate-dev/tollgate/internal/sharedsecret"
	"github.com/tollgate-dev/tollgate/internal/signin"
	"github.com/tollgate-dev/tollgate/tools"
	"github.com/tollgate-dev/tollgate/web/flows"
)

// Version is the tollgate version reported to MCP clients. Release builds
// set it with -ldflags "-X github.com/tollgate-dev/tollgate/compose.Version=v1.2.3"
// (make build does, from git describe); tollgate version falls back to the
// module version go install records.
var Version = "0.1.0-dev"

// App is one running tollgate: its Redis, its MCP server and HTTP handler.
type App struct {
	Cfg     config.Config
	Log     *slog.Logger
	Redis   *redisconn.Conn
	Catalog *catalog.Catalog
	mcp     *server.MCPServer
	Tools   []tools.Tool

	id     *identity
	money  *moneyParts
	stripe *stripeParts
	links  *links.Store
	tenant *tenancy
	// The edge's own small stores: shared secrets, MCP session owners and
	// URL-flow records.
	secrets   *sharedsecret.Store
	mcpOwners *mcpsession.Owners
	flowState *flowstate.Store
	// refusals is the audit trail of refusals (the edge's and the
	// guard's): repeats within a window are counted into one entry.
	refusals *limits.Coalescer
	// web is the /mcp edge, the approvals page and the provider flows.
	web *webParts
	// signin is the approvals page's OpenID Connect client (nil: none).
	signin *signin.Client
	// sandbox is the fake providers (sandbox mode only; sandbox.go).
	sandbox *sandboxParts
	gates   *gateParts
	// Observe is this tollgate's metrics and tracer.
	Observe *observe.Observer
	tracing *observe.Tracing
	cancel  context.CancelFunc
	// Credentials, when set before ServeStdio, yields the stdio caller's
	// token (see StdioCredentials).
	Credentials tools.Credentials
	// LocalDomains, set before StdioCredentials, are the domains the
	// sandbox's local stdio session may change (tollgate:resources);
	// without any it may only read.
	LocalDomains []string
}

// New builds an App. cfg must have passed Validate. It connects to Redis
// (or starts the sandbox's embedded one) and fails when Redis is unreachable.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RedisURL == "" && cfg.Mode != config.Sandbox {
		return nil, fmt.Errorf("app: --redis-url is required outside sandbox mode")
	}
	cat, err := catalog.Load()
	if err != nil {
		return nil, fmt.Errorf("app: catalog: %w", err)
	}
	// Traces go where the OTEL_* environment says; with none set, nowhere.
	tracing, err := observe.NewTracing(ctx, Version)
	if err != nil {
		return nil, fmt.Errorf("app: OpenTelemetry tracing from the OTEL_* environment: %w", err)
	}
	a := &App{Cfg: cfg, Log: log, Catalog: cat, tracing: tracing,
		Observe: observe.New(observe.Config{Version: Version, Mode: string(cfg.Mode), Tracer: tracing.Tracer()})}
	if cfg.Mode == config.Sandbox {
		// sandbox.go; a production build (-tags nosandbox) refuses here.
		if a.sandbox, err = startSandbox(cfg); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*App, error) {
		a.release()
		return nil, err
	}
	if a.Redis, err = redisconn.OpenWith(ctx, cfg.RedisURL, redisconn.Options{CAFile: cfg.RedisCA}); err != nil {
		return fail(err)
	}
	a.Redis.Client.AddHook(a.Observe.RedisHook())
	if a.secrets, err = sharedsecret.New(a.Redis.Client); err != nil {
		return fail(err)
	}
	if a.mcpOwners, err = mcpsession.New(a.Redis.Client); err != nil {
		return fail(err)
	}
	if a.flowState, err = flowstate.New(a.Redis.Client, flows.TTL); err != nil {
		return fail(err)
	}
	if a.id, err = a.buildIdentity(ctx); err != nil {
		return fail(err)
	}
	a.refusals = limits.NewCoalescer(a.id.trail, refusalWindow, 10000, func(err error) {
		a.Log.Error("audit append of a refusal count failed", "err", err)
	})
	if a.signin, err = a.buildSignIn(); err != nil {
		return fail(fmt.Errorf("approvals sign-in (--idp-issuer, --idp-client-id): %w", err))
	}
	if a.money, err = a.buildMoney(ctx); err != nil {
		return fail(err)
	}
	if a.gates, err = a.buildGates(ctx); err != nil {
		return fail(err)
	}
	a.watchState()
	if a.links, err = a.buildLinks(ctx); err != nil {
		return fail(err)
	}
	if a.stripe, err = a.buildStripe(); err != nil {
		return fail(err)
	}
	a.tenant = &tenancy{links: a.links, base: a.money.cloudflare, refresh: links.OAuthRefresher{Config: a.cloudflareOAuth(), HTTP: &http.Client{Timeout: cfg.ProviderTimeout}}}
	acctCfg, err := a.accountConfig()
	if err != nil {
		return fail(err)
	}
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.id.runKeys(bg)
	a.Tools = []tools.Tool{
		tools.Whoami(time.Now),
		tools.CatalogSearch(cat),
		tools.CatalogGet(cat),
		tools.PlanQuote(tools.QuoteConfig{Catalog: cat, Ledger: a.money.ledger, ConfirmAbove: a.gates.confirm, Tools: a.toolByName}),
		tools.SpendStatus(a.money.ledger),
		tools.DomainCheck(),
		tools.DomainRegister(a.registerConfig()),
		tools.DNSList(),
		tools.DNSUpsert(),
		tools.DNSDelete(),
		tools.SSLConfigure(),
		tools.APITokenCreate(a.links, time.Now),
		tools.BillingSetup(a.links),
		tools.AccountConnect(acctCfg),
		tools.SubscriptionStart(tools.SubscriptionConfig{Catalog: cat, Stripe: a.stripe.client, Links: a.links, Ledger: a.money.ledger}),
		tools.DeployPreview(tools.DeployConfig{WorkersSubdomain: a.workersSubdomain()}),
		tools.DeployPromote(),
	}
	// The only way tools are served: every one through the guard.
	a.mcp = tools.NewServer(a.guardDeps(), serverOptions(), "tollgate", Version, a.Tools...)
	if a.web, err = a.buildWeb(); err != nil {
		cancel()
		return fail(err)
	}
	return a, nil
}

// Close stops background work and releases Redis (and stops the embedded one).
func (a *App) Close() error {
	a.cancel()
	return a.release()
}

// release stops the sandbox's fakes and closes Redis, whatever was built.
func (a *App) release() error {
	if a.tracing != nil {
		// The spans still batched are sent before the process ends.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.tracing.Shutdown(sctx); err != nil {
			a.Log.Warn("sending the last traces failed", "err", err)
		}
		cancel()
	}
	if a.refusals != nil {
		// The counts of repeated refusals still open go to the trail.
		a.refusals.Close()
	}
	if a.sandbox != nil {
		a.sandbox.close()
	}
	if a.Redis == nil {
		return nil
	}
	return a.Redis.Close()
}

// serverOptions are the MCP server's options.
func serverOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithTitle("tollgate"),
		server.WithInstructions(instructions),
		server.WithToolCapabilities(false),
		server.WithLogging(),
		server.WithRecovery(),
		// Schemas are published strict (additionalProperties: false), and
		// every tool parses its arguments strictly itself, after the guard,
		// so a bad argument gets a stable code like any other refusal.
		server.WithStrictInputSchemaDefault(),
	}
}

// guardDeps are what the guard every tool runs through needs.
func (a *App) guardDeps() tools.GuardDeps {
	return tools.GuardDeps{
		// Every entry is appended before the call goes on: a tool call's in
		// the guard's first phase, with its session check.
		// Refusals go through the edge's coalescer: each is audited, and
		// repeats within a minute are counted into one entry.
		Trail: a.refusals, Log: a.Log, Observe: a.Observe,
		Guard: tools.GuardConfig{
			Verifier: a.id.verifier,
			// Over HTTP the edge bounds requests in flight (429); over
			// stdio the guard bounds the calls (a tool error).
			InFlight: limits.NewInFlight(a.Cfg.InflightPerPrincipal, a.Cfg.InflightPerSession, time.Second),
			Credentials: func(ctx context.Context) (string, error) {
				if a.Credentials == nil {
					return "", fault.New(fault.Unauthenticated, "no task token: set TOLLGATE_TOKEN or TOLLGATE_TOKEN_FILE")
				}
				return a.Credentials(ctx)
			},
		},
		Pipeline: tools.PipelineConfig{
			Phases:  &phase.Runner{Redis: a.Redis.Client, Audit: a.id.trail, Sessions: a.id.sessions, Loop: a.money.loop, Idem: a.money.idem, Ledger: a.money.ledger, Wait: a.redisWait()},
			Tenancy: a.tenant, Idem: a.money.idem, Loop: a.money.loop, Sessions: a.id.sessions,
			Trail: a.id.trail, Gates: a.gateConfig(), Log: a.Log.With("component", "pipeline"), HandlerDeadline: a.Cfg.HandlerDeadline,
			Caps: a.money.ledger, CapMax: a.gates.capMax,
		},
	}
}

// redisWait is how the guard's phases wait for Redis replicas
// (--redis-wait-replicas; 0 waits for none): a short hold is refused, a
// short commit is logged and counted.
func (a *App) redisWait() phase.Wait {
	return phase.Wait{Replicas: a.Cfg.RedisWaitReplicas, Timeout: a.Cfg.RedisWaitTimeout,
		Short: func(ph string, acked int) {
			a.Observe.RedisWaitShort(ph)
			if ph == "settle" {
				a.Log.Warn("a commit was acknowledged by fewer Redis replicas than --redis-wait-replicas in time; it is kept (the provider charged) but a failover now could lose it: check it with tollgate spend reconcile",
					"phase", ph, "acked", acked, "asked", a.Cfg.RedisWaitReplicas, "timeout", a.Cfg.RedisWaitTimeout)
			} else {
				a.Log.Warn("a hold was acknowledged by fewer Redis replicas than --redis-wait-replicas in time; it was released and the call refused",
					"phase", ph, "acked", acked, "asked", a.Cfg.RedisWaitReplicas, "timeout", a.Cfg.RedisWaitTimeout)
			}
		}}
}

// InProcessClient is an MCP client connected to this App's server in the
// same process (what the benchmark's in-process runs use); its calls go
// through the guard like any other.
func (a *App) InProcessClient(opts ...client.ClientOption) (*client.Client, error) {
	return client.NewInProcessClientWithOptions(a.mcp, opts...)
}

const instructions = `tollgate provisions Cloudflare and Stripe resources for a human, behind a task-scoped token, human approval gates and a monthly spend cap per provider. Start with catalog_search to see what can be provisioned and what it costs.`

// ServeStdio serves MCP over in/out until ctx ends or in closes. Nothing but
// protocol messages is ever written to out.
func (a *App) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	s := server.NewStdioServer(a.mcp)
	s.SetErrorLogger(slog.NewLogLogger(a.Log.Handler(), slog.LevelError))
	return s.Listen(ctx, in, out)
}

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.routes() }
