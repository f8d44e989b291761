package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/observe"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tollgate",
		Short: "MCP server: agents provision Cloudflare and Stripe safely",
		Long: `tollgate is an MCP server that lets AI agents provision real infrastructure
(Cloudflare accounts, domains, DNS, SSL, API tokens, Worker deployments) and start
paid Stripe subscriptions without ever holding a standing credential.

Every tool call carries a short-lived, task-scoped token (OAuth 2.0 Token Exchange,
RFC 8693) bound to a task session in Redis; legal and financial steps stop at a
human gate; every paid call is held against a per-provider monthly cap before the
provider is called.

Start the sandbox (fixtures, embedded Redis, dev identity, no network):
  tollgate serve

Every flag has an environment twin; flags win over the environment. The flags
that name the deployment have one twin for every command: --redis-url is
TOLLGATE_REDIS_URL, --issuer TOLLGATE_ISSUER, --cap TOLLGATE_CAP, --token
TOLLGATE_TOKEN, and serve's and stdio's configuration flags TOLLGATE_<FLAG>
(--token-ttl is TOLLGATE_TOKEN_TTL). Every other flag's twin names its command,
so a variable set for one command never changes another: tollgate token exchange
--scope is TOLLGATE_TOKEN_EXCHANGE_SCOPE, tollgate session list --limit is
TOLLGATE_SESSION_LIST_LIMIT. Each command's --help lists its twins.

Exit status: 0 success, 1 refusal (reason on stderr), 2 bad usage.`,
		Version:       compose.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usage("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newServe(), newStdio(), newCall(), newVersion(), newDev(), newToken(), newSession(), newSpend(), newAudit(), newApprovals())
	nameEnvTwins(root)
	return root
}

// envAnnotation holds a flag's environment twin; sharedAnnotation marks a
// flag whose twin is the same for every command.
const (
	envAnnotation    = "tollgate_env"
	sharedAnnotation = "tollgate_env_shared"
)

// sharedEnv are the flags that name the deployment: one twin each, the same
// for every command (TOLLGATE_REDIS_URL). serverFlags marks serve's and
// stdio's configuration flags the same way.
var sharedEnv = map[string]bool{"redis-url": true, "redis-ca": true, "issuer": true, "cap": true, "token": true}

// nameEnvTwins gives every flag of every command its environment twin and
// lists them in the command's help. A flag that does not name the
// deployment gets a twin naming its command (tollgate token exchange
// --scope: TOLLGATE_TOKEN_EXCHANGE_SCOPE), so that a variable exported for
// one command cannot silently change another.
func nameEnvTwins(c *cobra.Command) {
	for _, sub := range c.Commands() {
		nameEnvTwins(sub)
	}
	if !c.Runnable() || c.HasSubCommands() || c.Name() == "help" || c.Name() == "version" {
		return
	}
	prefix := "TOLLGATE_"
	for _, p := range strings.Fields(c.CommandPath())[1:] {
		prefix += strings.ToUpper(strings.ReplaceAll(p, "-", "_")) + "_"
	}
	any := false
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		name := envName(f.Name)
		if _, shared := f.Annotations[sharedAnnotation]; !shared && !sharedEnv[f.Name] {
			name = prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		}
		_ = c.Flags().SetAnnotation(f.Name, envAnnotation, []string{name})
		any = true
	})
	if any {
		c.Long += "\n" + envHelp(c.Flags())
	}
}

// serverFlags registers the flags of commands that run a tollgate server and
// returns a function that builds the validated config after parsing.
func serverFlags(fs *pflag.FlagSet) func() (config.Config, error) {
	d := config.Default()
	// Flags the command registered itself (stdio's --domains) keep twins
	// of their own.
	own := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { own[f.Name] = true })
	var (
		sandbox, production bool
		c                   = d
	)
	fs.BoolVar(&sandbox, "sandbox", false, "sandbox mode (the default): fixture providers, embedded Redis unless --redis-url, dev identity")
	fs.BoolVar(&production, "production", false, "production mode: real Cloudflare and Stripe (no Cloudflare token of the server's own: each human's calls use the account they link through tollgate's OAuth client, TOLLGATE_CLOUDFLARE_OAUTH_CLIENT_ID/_SECRET; the Stripe platform key from STRIPE_SECRET_KEY), --redis-url required, no dev identity")
	fs.StringVar(&c.Addr, "addr", d.Addr, "HTTP listen address (host:port)")
	fs.StringVar(&c.PublicURL, "public-url", "", "public base URL: the token issuer, and with /mcp the canonical resource URL (default http://<addr>)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL: redis://, rediss://, unix://, redis+sentinel://h1,h2/master or redis+cluster://h1,h2 (rediss+sentinel://, rediss+cluster:// for TLS; ACL user and password in the URL; sandbox default: an embedded Redis on a loopback port)")
	fs.StringSliceVar(&c.AllowedHosts, "allowed-hosts", nil, "Host headers served (DNS-rebinding protection; default: the address and public URL hosts)")
	fs.StringSliceVar(&c.AllowedOrigins, "allowed-origins", nil, "browser Origins allowed (default: the public URL's origin)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", d.MaxBodyBytes, "largest request body accepted; larger gets 413")
	fs.DurationVar(&c.TokenTTL, "token-ttl", d.TokenTTL, "lifetime of issued task tokens (never past the subject token's)")
	fs.StringVar(&c.LogLevel, "log-level", d.LogLevel, "debug, info, warn or error (logs go to stderr)")
	fs.StringVar(&c.LogFormat, "log-format", d.LogFormat, "text, or json: one JSON object per line with time, level, msg and, for a tool call, trace_id, session, tool and code")
	fs.StringVar(&c.PolicyFile, "policy", "", "Cedar policy file: which agents may act for whom, their widest scopes and budgets (sandbox default: embedded)")
	fs.StringVar(&c.IdPIssuer, "idp-issuer", "", "issuer of user (subject) tokens; production")
	fs.StringVar(&c.IdPAudience, "idp-audience", "", "audience tollgate is registered as at the IdP (default: the public URL)")
	fs.StringVar(&c.IdPJWKS, "idp-jwks", "", "JWKS file with the IdP's signing keys")
	fs.StringVar(&c.IdPClientID, "idp-client-id", "", "the approvals page's OpenID Connect client at --idp-issuer (authorization code with PKCE; register the redirect URI <public-url>/approvals/callback). Sandbox default: its built-in IdP at <public-url>/dev/idp; production without it has no sign-in, only tollgate approvals")
	fs.StringVar(&c.IdPClientSecret, "idp-client-secret", "", "that client's secret (empty for a public client); prefer the environment twin TOLLGATE_IDP_CLIENT_SECRET to the command line")
	fs.StringVar(&c.AttestIssuer, "attest-issuer", "", "issuer of workload attestation JWTs (SPIFFE, Kubernetes, CI OIDC); production")
	fs.StringVar(&c.AttestAudience, "attest-audience", "", "audience of workload JWTs (default: the public URL)")
	fs.StringVar(&c.AttestJWKS, "attest-jwks", "", "JWKS file: the workload issuer's trust bundle")
	fs.StringArrayVar(&c.Caps, "cap", nil, "monthly cap per provider per principal, e.g. --cap stripe=50.00 (repeatable; default 100.00 USD each)")
	fs.DurationVar(&c.HandlerDeadline, "handler-deadline", d.HandlerDeadline, "how long a tool's provider work may take (a registration's polling included); --hold-ttl must exceed it by 1m")
	fs.DurationVar(&c.IdempotencyLock, "idempotency-lock", d.IdempotencyLock, "how long a running call keeps its idempotency key; at least --hold-ttl")
	fs.DurationVar(&c.HoldTTL, "hold-ttl", d.HoldTTL, "how long a hold lives if its call never finishes (a crash); then it is released and listed for reconciliation")
	fs.IntVar(&c.RateSession, "rate-session", d.RateSession, "metered tool calls per minute per task session")
	fs.IntVar(&c.RateUser, "rate-user", d.RateUser, "metered tool calls per minute per principal")
	fs.StringVar(&c.FormGates, "form-gates", d.FormGates, "how purchase, production, terms and cap_raise gates are answered: elicit (the MCP client shows the form; an agent that runs its own client can answer it) or approval (the human decides on the approvals page, or an operator with tollgate approvals); default approval with --production, elicit in the sandbox")
	fs.StringVar(&c.ConfirmAbove, "confirm-above", d.ConfirmAbove, "purchases at or above this amount (USD) ask the human first (the purchase gate); subscriptions always ask")
	fs.StringVar(&c.CapMax, "cap-max", d.CapMax, "the highest a human may raise a month's cap to (USD) when a purchase would exceed it (the cap_raise gate); 0 turns the gate off")
	fs.StringVar(&c.SandboxProvidersFrom, "sandbox-providers-from", "", "sandbox only: use the fake Cloudflare and Stripe of the sandbox replica at this loopback base URL, so several sandbox replicas on one Redis act on one set of fake accounts")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long graceful shutdown waits for requests in flight")
	fs.DurationVar(&c.MCPSessionIdle, "mcp-session-idle", d.MCPSessionIdle, "how long an idle legacy (2025-11-25) MCP session is kept before it is closed")
	fs.IntVar(&c.MCPSessionsPerPrincipal, "mcp-sessions-per-principal", d.MCPSessionsPerPrincipal, "legacy MCP sessions one principal may have open (used within --mcp-session-idle); one more initialize gets 429")
	fs.IntVar(&c.InflightPerPrincipal, "inflight-per-principal", d.InflightPerPrincipal, "requests one principal may have in flight on this replica; more get 429 (a tool error over stdio)")
	fs.IntVar(&c.InflightPerSession, "inflight-per-session", d.InflightPerSession, "requests one task session may have in flight on this replica; more get 429 (a tool error over stdio)")
	fs.IntVar(&c.PendingApprovals, "pending-approvals", d.PendingApprovals, "approvals one principal may have asked for within an approval's lifetime (10m); more are refused with too_many_requests")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "how long a client may take to send its request headers (slow clients are cut off)")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", d.BodyTimeout, "how long a client may take to send a request's body; slower gets 408 (responses may stream longer)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", d.IdleTimeout, "how long an idle keep-alive connection is kept open")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", d.MaxHeaderBytes, "largest request headers accepted; larger gets 431")
	fs.StringVar(&c.MetricsToken, "metrics-token", "", "bearer token /metrics asks for (default: none, /metrics is open; it carries no principal or e-mail)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address only (e.g. 127.0.0.1:9420) instead of on --addr")
	fs.IntVar(&c.MaxConnections, "max-connections", d.MaxConnections, "connections this replica holds open at once; more wait to be accepted (keep it under the process's file descriptor limit)")
	fs.IntVar(&c.RedisWaitReplicas, "redis-wait-replicas", d.RedisWaitReplicas, "replicas (0..16) that must acknowledge each hold, commit and Stripe renewal (Redis WAIT, same round trip); a hold short of them is released and the call refused, nothing charged. 0 (default) waits for none")
	fs.DurationVar(&c.RedisWaitTimeout, "redis-wait-timeout", d.RedisWaitTimeout, "how long (10ms..1s) a hold, commit or renewal waits for --redis-wait-replicas")
	fs.StringVar(&c.RedisCA, "redis-ca", "", "PEM file of the CA that signs the Redis servers' certificates (rediss:// URLs; default: the system roots)")
	fs.DurationVar(&c.ProviderTimeout, "provider-timeout", d.ProviderTimeout, "how long one request to Cloudflare or Stripe may take; shorter than --handler-deadline")
	fs.StringVar(&c.CloudflareAPIURL, "cloudflare-api-url", "", "production only: the Cloudflare API root to call instead of the real one (a fake in tests); https, or http to a loopback host")
	fs.StringVar(&c.StripeWebhookSecret, "stripe-webhook-secret", "", "the signing secret (whsec_…) of the Stripe webhook endpoint <public-url>/webhooks/stripe, which records subscription renewals and cancellations; empty: the endpoint answers 503")
	fs.StringVar(&c.StripeAPIURL, "stripe-api-url", "", "production only: the Stripe API root to call instead of the real one (stripe-mock in tests); https, or http to a loopback host")
	// One configuration, whichever command runs the server: serve's and
	// stdio's twins are shared (TOLLGATE_TOKEN_TTL for both).
	fs.VisitAll(func(f *pflag.Flag) {
		if !own[f.Name] {
			_ = fs.SetAnnotation(f.Name, sharedAnnotation, []string{"true"})
		}
	})
	return func() (config.Config, error) {
		if err := applyEnv(fs); err != nil {
			return config.Config{}, err
		}
		if sandbox && production {
			return config.Config{}, usage("--sandbox and --production exclude each other; pick one")
		}
		c.Mode = config.Sandbox
		if production {
			c.Mode = config.Production
		}
		if c.Mode == config.Sandbox && !compose.SandboxBuilt {
			// A production build links no fakes, no embedded Redis and no
			// dev identity (go build -tags nosandbox).
			return config.Config{}, usage("%v", compose.ErrNoSandbox)
		}
		if err := c.Validate(); err != nil {
			return config.Config{}, &usageError{err}
		}
		for _, v := range c.Caps {
			// Checked with the rest, not first when the ledger is built, so
			// a bad cap is bad usage (exit 2) naming the flag.
			if _, _, err := spend.ParseCapFlag(v); err != nil {
				return config.Config{}, usage("--cap (or TOLLGATE_CAP): %s", strings.TrimPrefix(err.Error(), "spend: "))
			}
		}
		return c, nil
	}
}

// envName is the shared environment twin of a flag: --redis-url →
// TOLLGATE_REDIS_URL.
func envName(flag string) string {
	return "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagEnv is the twin nameEnvTwins gave f (its shared name before that).
func flagEnv(f *pflag.Flag) string {
	if n := f.Annotations[envAnnotation]; len(n) == 1 {
		return n[0]
	}
	return envName(f.Name)
}

// applyEnv fills every flag not given on the command line from its
// environment twin. A bad value names both the variable and the flag.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := flagEnv(f)
		v, ok := os.LookupEnv(name)
		if old := envName(f.Name); old != name {
			if _, set := os.LookupEnv(old); set {
				fmt.Fprintf(os.Stderr, "tollgate: note: %s is not read here; the twin of --%s for this command is %s\n", old, f.Name, name)
			}
		}
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usage("%s=%q (the twin of --%s): %v", name, v, f.Name, serr)
		}
	})
	return err
}

func newLogger(level string) *slog.Logger {
	return newLoggerAs(level, "text")
}

// newLoggerAs logs to stderr at level in format (text or json, already
// validated by the config).
func newLoggerAs(level, format string) *slog.Logger {
	log, err := observe.NewLogger(os.Stderr, format, level)
	if err != nil {
		log, _ = observe.NewLogger(os.Stderr, "text", "info")
	}
	return log
}

// envHelp is appended to commands' help.
func envHelp(fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString("\nEnvironment twins:\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden {
			return
		}
		fmt.Fprintf(&b, "  --%-22s %s\n", f.Name, flagEnv(f))
	})
	return b.String()
}
