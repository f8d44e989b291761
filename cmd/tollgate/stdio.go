package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/internal/app"
)

func newStdio() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stdio",
		Short: "Serve MCP over stdin/stdout, for clients that launch tollgate as a subprocess",
		Long: `stdio serves MCP over stdin and stdout. Only protocol messages are written to
stdout; logs go to stderr. It takes the same flags as serve (the HTTP ones are
ignored). In sandbox mode without --redis-url it starts its own embedded Redis.

The task token comes from TOLLGATE_TOKEN, or TOLLGATE_TOKEN_FILE (re-read on every
call). In sandbox mode without either, tollgate attests its parent process (the
MCP client that launched it: uid, executable and its SHA-256) and mints a task
session for the local OS user; the session id is printed on stderr.

Example client configuration:
  {"command": "tollgate", "args": ["stdio"]}`,
		Args: cobra.NoArgs,
	}
	build := serverFlags(cmd.Flags())
	cmd.Long += envHelp(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := build()
		if err != nil {
			return err
		}
		log := newLogger(cfg.LogLevel)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		a, err := app.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		creds, sid, err := a.StdioCredentials(ctx, os.Getenv)
		if err != nil {
			return err
		}
		a.Credentials = creds
		if sid != "" {
			log.Info("minted a local sandbox session for the parent process", "session", sid)
		}
		log.Info("tollgate stdio", "mode", cfg.Mode, "version", app.Version)
		return a.ServeStdio(ctx, os.Stdin, os.Stdout)
	}
	return cmd
}
