package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/config"
)

func newStdio() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stdio",
		Short: "Serve MCP over stdin/stdout, for clients that launch tollgate as a subprocess",
		Long: `stdio serves MCP over stdin and stdout. Only protocol messages are written to
stdout; logs go to stderr. It takes serve's configuration flags, less those of
the HTTP listener; --public-url names the server whose tokens it accepts (their
audience is <public-url>/mcp). In sandbox mode without --redis-url it starts its
own embedded Redis.

The task token comes from TOLLGATE_TOKEN, or TOLLGATE_TOKEN_FILE (re-read on every
call). In sandbox mode without either, tollgate attests its parent process (the
MCP client that launched it: uid, executable and its SHA-256) and mints a task
session for the local OS user, linked to that user's own Cloudflare account in
the sandbox's fake; the session id is printed on stderr. That session may only
read unless --domains names what it may change (it then also carries a 100.00
USD budget per provider of sandbox money).

Example client configuration:
  {"command": "tollgate", "args": ["stdio"]}`,
		Args: cobra.NoArgs,
	}
	var domains []string
	cmd.Flags().StringSliceVar(&domains, "domains", nil, "sandbox local session only: the domains it may change (tollgate:resources), e.g. shop.example,shop.other")
	build := serverFlags(cmd.Flags())
	// The HTTP listener's flags mean nothing here: they still parse (one
	// environment serves both commands) but are not offered.
	for _, f := range []string{"addr", "allowed-hosts", "allowed-origins", "max-body-bytes", "shutdown-timeout",
		"read-header-timeout", "body-timeout", "idle-timeout", "max-header-bytes", "max-connections", "mcp-session-idle", "mcp-sessions-per-principal",
		// The approvals page's sign-in client: the page is served by serve.
		"idp-client-id", "idp-client-secret"} {
		_ = cmd.Flags().MarkHidden(f)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := build()
		if err != nil {
			return err
		}
		if len(domains) > 0 && (cfg.Mode != config.Sandbox || os.Getenv("TOLLGATE_TOKEN") != "" || os.Getenv("TOLLGATE_TOKEN_FILE") != "") {
			return usage("--domains shapes only the sandbox's local session; with a task token, the token's authorization_details decide")
		}
		log := newLoggerAs(cfg.LogLevel, cfg.LogFormat)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		a, err := compose.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		a.LocalDomains = domains
		creds, sid, err := a.StdioCredentials(ctx, os.Getenv)
		if err != nil {
			return err
		}
		a.Credentials = creds
		if sid != "" {
			log.Info("minted a local sandbox session for the parent process", "session", sid)
		}
		log.Info("tollgate stdio", "mode", cfg.Mode, "version", compose.Version)
		return a.ServeStdio(ctx, os.Stdin, os.Stdout)
	}
	return cmd
}
