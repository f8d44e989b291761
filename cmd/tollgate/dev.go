package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultIssuer is where `make run` / `tollgate serve` listen by default.
const defaultIssuer = "http://127.0.0.1:7420"

func newDev() *cobra.Command {
	return group(&cobra.Command{
		Use:   "dev",
		Short: "Get sandbox identities from a running sandbox server (user and agent tokens)",
		Long: `dev asks a running sandbox server (make run, or tollgate serve) for identities
of its dev identity provider: a user (subject) token for any e-mail address, and
a workload attestation for any agent name. The dev endpoints exist only in
sandbox mode and answer only on loopback; a production server has none.

  tollgate dev login --user alice@example.com
  tollgate dev agent-token --agent planner
  tollgate dev link-account --user alice@example.com
  tollgate dev advance --days 32`,
	}, newDevLogin(), newDevAgentToken(), newDevLinkAccount(), newDevAdvance())
}

func newDevAdvance() *cobra.Command {
	var issuer string
	var days int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "advance --days N [--json]",
		Short: "Move the sandbox's Stripe test clock N days on, renewing subscriptions that fall due",
		Long: `advance moves the running sandbox's Stripe test clock (every sandbox customer
lives on it) N days on, as Stripe's test clocks do. Each subscription whose
period ends renews: the fake creates and pays the invoice and sends the signed
invoice.paid event to the server's /webhooks/stripe, which commits the renewal
to the month of the invoice's period (see spend_status {"month": "YYYY-MM"}).
The events are delivered before this command returns. Sandbox only.

  tollgate dev advance --days 32`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.IntVar(&days, "days", 0, "how many days to move the clock on, 1 to 400 (required)")
	fs.BoolVar(&asJSON, "json", false, "print the whole answer as JSON")
	issuerFlag(fs, &issuer)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if days < 1 || days > 400 {
			return usage("give --days N, from 1 to 400, e.g. --days 32")
		}
		base, err := parseIssuer(issuer)
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		status, body, err := postForm(ctx, base, "/dev/stripe/advance", url.Values{"days": {fmt.Sprint(days)}})
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return serverRefusal(base, "/dev/stripe/advance", status, body)
		}
		var out struct {
			Frozen   string   `json:"frozen_time"`
			Renewals int      `json:"renewals"`
			Failed   []string `json:"failed_deliveries"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Frozen == "" {
			return fmt.Errorf("the server at %s answered without a clock; is it a tollgate sandbox?", base)
		}
		if asJSON {
			_, err = fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
		} else {
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "sandbox Stripe clock now %s; %d renewal(s) charged and sent to /webhooks/stripe\n", out.Frozen, out.Renewals)
		}
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d webhook deliveries failed: %s", len(out.Failed), strings.Join(out.Failed, "; "))
		}
		return err
	}
	return cmd
}

func newDevLinkAccount() *cobra.Command {
	var user, issuer string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "link-account --user EMAIL [--json]",
		Short: "Link a sandbox Cloudflare account for a dev user, skipping the human steps",
		Long: `link-account asks the running sandbox server to link the dev user's Cloudflare
account in the sandbox's fake, as billing_setup and account_connect do with the
human in the loop: the existing account for that e-mail (as if its owner allowed
tollgate on Cloudflare's consent page), or a new one (as if they accepted the
terms). Every Cloudflare tool of that user's agents then acts in that account,
and only there. It prints the account id (with --json: principal, account_id,
created, zones). Sandbox only; the human steps are the real way (see README).

  tollgate dev link-account --user alice@example.com`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&user, "user", "", "the dev user's e-mail address (required)")
	fs.BoolVar(&asJSON, "json", false, "print the whole answer as JSON")
	issuerFlag(fs, &issuer)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if user == "" {
			return usage("give --user EMAIL: the dev user whose Cloudflare account to link, e.g. --user alice@example.com")
		}
		base, err := parseIssuer(issuer)
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		status, body, err := postForm(ctx, base, "/dev/cloudflare/link", url.Values{"email": {user}})
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return serverRefusal(base, "/dev/cloudflare/link", status, body)
		}
		var out struct {
			AccountID string `json:"account_id"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.AccountID == "" {
			return fmt.Errorf("the server at %s answered without an account; is it a tollgate sandbox?", base)
		}
		if asJSON {
			_, err = fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
			return err
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), out.AccountID)
		return err
	}
	return cmd
}

func newDevLogin() *cobra.Command {
	var user, scope, issuer string
	cmd := &cobra.Command{
		Use:   "login --user EMAIL [--scope \"a b\"]",
		Short: "Print a sandbox user (subject) token for EMAIL",
		Long: `login asks the running sandbox server's dev identity provider for a user
(subject) token for EMAIL, and prints the token alone on stdout, followed by a
newline. The token is an OIDC ID token of principal user:EMAIL, valid for an hour;
it carries every sandbox scope unless --scope asks for fewer. Give it to
tollgate token exchange as the subject token.

On a refusal the server's reason is printed on stderr and the exit status is 1;
when no server answers, start one with make run or tollgate serve.

Example:
  USER_TOKEN=$(tollgate dev login --user alice@example.com --scope "dns:read dns:write")`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&user, "user", "", "e-mail address of the sandbox user to log in (required)")
	fs.StringVar(&scope, "scope", "", "space-separated scopes the user token carries (default: every sandbox scope)")
	issuerFlag(fs, &issuer)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if user == "" {
			return usage("give --user EMAIL: the sandbox user to log in, e.g. --user alice@example.com")
		}
		form := url.Values{"email": {user}}
		if s := strings.Join(strings.Fields(scope), " "); s != "" {
			form.Set("scope", s)
		}
		return printDevToken(cmd, issuer, "/dev/login", form)
	}
	return cmd
}

func newDevAgentToken() *cobra.Command {
	var agent, issuer string
	cmd := &cobra.Command{
		Use:   "agent-token --agent NAME",
		Short: "Print a sandbox workload attestation for agent NAME",
		Long: `agent-token asks the running sandbox server for a workload attestation (a JWT
signed by the sandbox's trust bundle) of the dev agent
spiffe://tollgate.sandbox/agent/NAME, and prints the token alone on stdout,
followed by a newline. It is valid for an hour. Give it to tollgate token
exchange as the actor token: the agent then acts for the subject.

On a refusal the server's reason is printed on stderr and the exit status is 1;
when no server answers, start one with make run or tollgate serve.

Example:
  AGENT_TOKEN=$(tollgate dev agent-token --agent planner)`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&agent, "agent", "", "name of the sandbox agent, e.g. planner (required)")
	issuerFlag(fs, &issuer)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if agent == "" {
			return usage("give --agent NAME: the sandbox agent to attest, e.g. --agent planner")
		}
		return printDevToken(cmd, issuer, "/dev/agent-token", url.Values{"name": {agent}})
	}
	return cmd
}

// printDevToken posts form to a dev endpoint and prints the token alone.
func printDevToken(cmd *cobra.Command, issuer, path string, form url.Values) error {
	base, err := parseIssuer(issuer)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	status, body, err := postForm(ctx, base, path, form)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		if e, ok := parseOAuthError(body); ok && e.Description != "" {
			return errors.New(e.Description)
		}
		return serverRefusal(base, path, status, body)
	}
	var ok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &ok); err != nil || ok.Token == "" {
		return fmt.Errorf("the server at %s answered %s without a token; is it a tollgate sandbox?", base, path)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), ok.Token)
	return err
}

// issuerFlag registers --issuer, the base URL of a running tollgate server.
func issuerFlag(fs *pflag.FlagSet, issuer *string) {
	fs.StringVar(issuer, "issuer", defaultIssuer, "base URL of the running tollgate server (its issuer)")
}

// parseIssuer checks --issuer and returns it without a trailing slash. An
// empty value (TOLLGATE_ISSUER set but empty) is the default.
func parseIssuer(raw string) (string, error) {
	if raw == "" {
		raw = defaultIssuer
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", usage("--issuer %q is not a server base URL; give one like %s", raw, defaultIssuer)
	}
	if u.User != nil {
		return "", usage("--issuer must not carry credentials in the URL")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		fmt.Fprintf(os.Stderr, "tollgate: warning: sending tokens over plain http to %s; use https beyond loopback\n", u.Host)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// maxResponse bounds what the CLI reads from a server.
const maxResponse = 1 << 20

// postForm POSTs a form to base+path and returns the status and body.
func postForm(ctx context.Context, base, path string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// Redirects are not followed: a redirected POST would re-send the tokens
	// in its body to wherever the Location points.
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return 0, nil, fmt.Errorf("no tollgate server answers at %s; start one with `make run` or `tollgate serve`, or point --issuer at a running one", base)
		}
		return 0, nil, fmt.Errorf("cannot reach the tollgate server at %s: %v", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer of %s%s: %v", base, path, err)
	}
	if len(body) > maxResponse {
		return 0, nil, fmt.Errorf("the answer of %s%s is larger than %d bytes; is --issuer a tollgate server?", base, path, maxResponse)
	}
	return resp.StatusCode, body, nil
}

// oauthError is an RFC 6749 §5.2 error body (the dev endpoints use it too).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func parseOAuthError(body []byte) (oauthError, bool) {
	var e oauthError
	return e, json.Unmarshal(body, &e) == nil && e.Code != ""
}

// serverRefusal turns a non-200 answer into the error printed on stderr:
// "code: description" when the body is an OAuth error, else the status.
func serverRefusal(base, path string, status int, body []byte) error {
	if e, ok := parseOAuthError(body); ok {
		if e.Description == "" {
			return errors.New(e.Code)
		}
		return fmt.Errorf("%s: %s", e.Code, e.Description)
	}
	if status >= 300 && status < 400 {
		return fmt.Errorf("the server at %s redirected %s (status %d); point --issuer at the server itself", base, path, status)
	}
	return fmt.Errorf("the server at %s answered %s with status %d and no OAuth error; is --issuer a tollgate server?", base, path, status)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// group makes cmd a command that only holds subcommands: run alone or with
// an unknown subcommand it is bad usage (exit 2), not a silent help page.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		names := make([]string, 0, len(subs))
		for _, s := range subs {
			names = append(names, s.Name())
		}
		if len(args) > 0 {
			return usage("unknown command %q for %s; use one of: %s (see %s --help)", args[0], c.CommandPath(), strings.Join(names, ", "), c.CommandPath())
		}
		return usage("%s needs a subcommand: %s (see %s --help)", c.CommandPath(), strings.Join(names, ", "), c.CommandPath())
	}
	cmd.AddCommand(subs...)
	return cmd
}

// noArgs is cobra.NoArgs as bad usage (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage("%s takes no arguments, got %q (see %s --help)", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return nil
}

// exactArgs is cobra.ExactArgs as bad usage (exit 2); what names the arguments.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usage("%s takes %s, got %d arguments (see %s --help)", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
