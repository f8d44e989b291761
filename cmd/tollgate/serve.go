package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/config"
)

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve MCP over Streamable HTTP, with the OAuth endpoints and the catalog",
		Long: `serve runs the HTTP server:

  /mcp          MCP over Streamable HTTP (2026-07-28 and 2025-11-25 clients)
  /v1/catalog   the service catalog as JSON (?q= searches, ?provider= filters)
  /healthz      liveness: the process serves HTTP (reads nothing)
  /readyz       readiness: Redis answers and this replica's signing keys are published (503 otherwise)
  /metrics      Prometheus metrics (behind --metrics-token, or on --metrics-addr)

Sandbox mode (the default) needs nothing else: it starts an embedded Redis on a
loopback port (printed at start-up, so the CLI of another process can use it with
--redis-url) and uses fixture providers. Production mode (--production) needs
--redis-url and real provider credentials in the environment.

Request bodies are limited (413 beyond --max-body-bytes); Host and Origin are
checked against allow-lists (DNS-rebinding protection). SIGINT or SIGTERM shut
down gracefully.`,
		Args: cobra.NoArgs,
	}
	build := serverFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := build()
		if err != nil {
			return err
		}
		log := newLoggerAs(cfg.LogLevel, cfg.LogFormat)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		a, err := compose.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s (%v); pick a free address with --addr", cfg.Addr, err)
		}
		// At most --max-connections at once: the rest wait to be accepted.
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes}
		if cfg.MetricsAddr != "" {
			mln, err := net.Listen("tcp", cfg.MetricsAddr)
			if err != nil {
				return fmt.Errorf("cannot listen on %s (%v); pick a free address with --metrics-addr", cfg.MetricsAddr, err)
			}
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", a.MetricsHandler())
			msrv := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
				MaxHeaderBytes: cfg.MaxHeaderBytes}
			go func() { _ = msrv.Serve(netutil.LimitListener(mln, 64)) }()
			defer msrv.Close()
			log.Info("metrics", "addr", mln.Addr().String())
		}
		// The banner comes first: once /healthz answers, everything a
		// script reads from stderr (the embedded Redis URL) is there.
		if cfg.LogFormat == "json" {
			// Every line JSON: the banner becomes one log line.
			redis := cfg.RedactedRedisURL()
			if a.Redis.Embedded {
				redis = a.Redis.URL
			}
			log.Info("tollgate listening", "version", compose.Version, "mode", string(cfg.Mode), "addr", ln.Addr().String(),
				"mcp", cfg.ResourceURL(), "redis", redis, "redis_embedded", a.Redis.Embedded)
		} else {
			printBanner(a, ln.Addr().String())
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		case <-ctx.Done():
			log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
		}
		return nil
	}
	return cmd
}

// printBanner tells the operator, on stderr, what is running and how to connect.
func printBanner(a *compose.App, addr string) {
	cfg := a.Cfg
	redis := cfg.RedactedRedisURL()
	if a.Redis.Embedded {
		redis = a.Redis.URL + " (embedded; other tollgate commands can use it with --redis-url)"
	}
	fmt.Fprintf(os.Stderr, `tollgate %s — %s mode
  listening  http://%s
  MCP        %s
  catalog    %s/v1/catalog?q=domain
  redis      %s
`, compose.Version, cfg.Mode, addr, cfg.ResourceURL(), cfg.PublicURL, redis)
	if cfg.Mode == config.Sandbox {
		// USER_TOKEN and TASK, not USER and TOKEN: pasting these lines must
		// not overwrite the shell's $USER.
		fmt.Fprintf(os.Stderr, `
Get a task token (the sandbox's dev identity) and call a tool:
  export TOLLGATE_ISSUER=%s        # every tollgate command talks to this server
  USER_TOKEN=$(tollgate dev login --user you@example.com)
  AGENT=$(tollgate dev agent-token --agent my-agent)
  TASK=$(tollgate token exchange --subject-token "$USER_TOKEN" --actor-token "$AGENT" --token-only)
  tollgate call whoami --token "$TASK"
then any MCP client sends "Authorization: Bearer $TASK" to %s,
or launches "tollgate stdio" (it mints a local session itself).
`, cfg.PublicURL, cfg.ResourceURL())
	}
}
