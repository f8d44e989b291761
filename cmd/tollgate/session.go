package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/redisconn"
	"github.com/tollgate-dev/tollgate/sessions"
)

func newSession() *cobra.Command {
	return group(&cobra.Command{
		Use:   "session",
		Short: "List, show and revoke task sessions of a running deployment",
		Long: `session acts on the task sessions of a running deployment, through its Redis
(--redis-url: the address tollgate serve printed at start-up, or the production
Redis). Every token exchange creates a task session; a sub-agent's session is a
child of its upstream agent's. Revoking a session revokes its whole subtree, and
the next tool call on any replica is refused.

  tollgate session list --redis-url redis://127.0.0.1:6379
  tollgate session show SID --redis-url redis://127.0.0.1:6379
  tollgate session revoke SID --reason "task cancelled" --redis-url redis://127.0.0.1:6379`,
	}, newSessionList(), newSessionShow(), newSessionRevoke())
}

// cliRedisCA is --redis-ca of the one command this process runs.
var cliRedisCA string

func redisURLFlag(fs *pflag.FlagSet, u *string) {
	fs.StringVar(u, "redis-url", "", "Redis of the running deployment: the address tollgate serve printed at start-up (required)")
	fs.StringVar(&cliRedisCA, "redis-ca", "", "PEM file of the CA that signs the Redis servers' certificates (rediss:// URLs; default: the system roots)")
}

// openStore connects to the deployment's Redis; call closeFn when done.
func openStore(ctx context.Context, redisURL string) (store *sessions.Store, closeFn func(), err error) {
	if redisURL == "" {
		return nil, nil, usage("give --redis-url: the address `tollgate serve` printed at start-up")
	}
	// A one-shot command reports a Redis failure once, itself; go-redis's
	// own log of every dial retry would bury that message on stderr.
	redis.SetLogger(quietRedis{})
	conn, err := redisconn.OpenWith(ctx, redisURL, redisconn.Options{CAFile: cliRedisCA})
	if err != nil {
		return nil, nil, err
	}
	store, err = sessions.New(conn.Client, sessions.Config{})
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return store, func() { _ = conn.Close() }, nil
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// storeError translates an error of the session store for the operator:
// its public message and, for Redis trouble, the cause. A bad argument is
// bad usage.
func storeError(err error, sid string) error {
	switch fault.CodeOf(err) {
	case fault.NotFound:
		return fmt.Errorf("no session %s (it does not exist, or its record is past retention)", sid)
	case fault.InvalidArgument:
		return usage("%s", fault.PublicOf(err))
	}
	if cause := errors.Unwrap(err); cause != nil {
		return fmt.Errorf("%s (%v)", fault.PublicOf(err), cause)
	}
	return errors.New(fault.PublicOf(err))
}

func newSessionList() *cobra.Command {
	var (
		redisURL, principal, status string
		limit                       int
		asJSON                      bool
	)
	cmd := &cobra.Command{
		Use:   "list [--principal P] [--status active|revoked|expired] [--limit N]",
		Short: "List task sessions, latest expiry first",
		Long: `list prints the task sessions whose records are still kept (expired ones stay
for the retention window, 24h), latest expiry first: one line per session with
its id, status, principal, the agent acting in it, scopes, expiry and parent.
With --json it prints a JSON array of session records.

Examples:
  tollgate session list --redis-url redis://127.0.0.1:6379 --principal user:alice@example.com
  tollgate session list --status active --json | jq -r '.[].id'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "only this principal's sessions, e.g. user:alice@example.com (default: every principal)")
	fs.StringVar(&status, "status", "", "only sessions in this status: active, revoked or expired")
	fs.IntVar(&limit, "limit", sessions.DefaultListLimit, fmt.Sprintf("at most this many sessions (1-%d)", sessions.MaxListLimit))
	fs.BoolVar(&asJSON, "json", false, "print a JSON array of session records")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		switch sessions.Status(status) {
		case "", sessions.StatusActive, sessions.StatusRevoked, sessions.StatusExpired:
		default:
			return usage("--status %q: use active, revoked or expired", status)
		}
		if limit < 1 || limit > sessions.MaxListLimit {
			return usage("--limit %d: give 1 to %d", limit, sessions.MaxListLimit)
		}
		ctx, stop := signalContext()
		defer stop()
		store, closeStore, err := openStore(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeStore()
		list, err := store.List(ctx, sessions.ListFilter{Principal: principal, Status: sessions.Status(status), Limit: limit})
		if err != nil {
			return storeError(err, "")
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), nonNilSessions(list))
		}
		if len(list) == 0 {
			msg := "tollgate: no sessions match"
			if principal != "" && !strings.Contains(principal, ":") {
				msg += "; principals are written user:<sub>, e.g. user:" + principal
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		}
		return printSessionTable(cmd.OutOrStdout(), list, time.Now())
	}
	return cmd
}

func nonNilSessions(l []sessions.Session) []sessions.Session {
	if l == nil {
		return []sessions.Session{}
	}
	return l
}

func printSessionTable(w io.Writer, list []sessions.Session, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tSTATUS\tPRINCIPAL\tAGENT\tSCOPES\tEXPIRES\tPARENT")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, clean(s.Principal), clean(dash(agentOf(s))),
			dash(strings.Join(s.Scopes, " ")), when(s.Expires, now, ""), dash(s.Parent))
	}
	return tw.Flush()
}

// agentOf is the agent acting in a session: the head of its actor chain.
func agentOf(s sessions.Session) string {
	if len(s.Actors) > 0 {
		return s.Actors[0]
	}
	return s.ClientID
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newSessionShow() *cobra.Command {
	var (
		redisURL string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a task session and its sub-agents' sessions as a tree",
		Long: `show prints the task session ID and every descendant session (the sessions of
sub-agents it delegated to, and theirs) as a tree: each session's id, status,
principal, actor chain (first agent → the one acting now), scopes, expiry and,
when revoked, why. With --json it prints the session record with its
descendants nested under "children".

Example:
  tollgate session show 3kq7… --redis-url redis://127.0.0.1:6379`,
		Args: exactArgs(1, "one session ID"),
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.BoolVar(&asJSON, "json", false, `print the session as JSON, descendants under "children"`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		sid := args[0]
		ctx, stop := signalContext()
		defer stop()
		store, closeStore, err := openStore(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeStore()
		s, err := store.Lookup(ctx, sid)
		if err != nil {
			return storeError(err, sid)
		}
		tree, err := store.Tree(ctx, s.Principal, sid)
		if err != nil {
			return storeError(err, sid)
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), tree)
		}
		var b strings.Builder
		drawSession(&b, tree, "", "", time.Now())
		_, err = io.WriteString(cmd.OutOrStdout(), b.String())
		return err
	}
	return cmd
}

// drawSession writes n as a tree node: lead is the branch glyph before its
// id, indent what precedes its details and its children's glyphs.
func drawSession(b *strings.Builder, n *sessions.Node, lead, indent string, now time.Time) {
	status := string(n.Status)
	if n.Status == sessions.StatusRevoked && n.RevokedReason != "" {
		status += " (" + n.RevokedReason + ")"
	}
	fmt.Fprintf(b, "%s%s  %s\n", lead, n.ID, clean(status))
	pipe := indent + "   "
	if len(n.Children) > 0 {
		pipe = indent + "│  "
	}
	detail := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "%s%-10s %s\n", pipe, k, clean(v))
		}
	}
	detail("principal", n.Principal)
	actors := slices.Clone(n.Actors)
	slices.Reverse(actors)
	detail("actors", strings.Join(actors, " → "))
	detail("scopes", strings.Join(n.Scopes, " "))
	if len(n.AuthorizationDetails) > 0 {
		detail("details", string(n.AuthorizationDetails))
	}
	detail("task", n.Description)
	detail("expires", when(n.Expires, now, "expired "))
	if !n.RevokedAt.IsZero() {
		detail("revoked", when(n.RevokedAt, now, ""))
	}
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			drawSession(b, c, indent+"└─ ", indent+"   ", now)
		} else {
			drawSession(b, c, indent+"├─ ", indent+"│  ", now)
		}
	}
}

func newSessionRevoke() *cobra.Command {
	var (
		redisURL, reason string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "revoke ID [--reason R]",
		Short: "Revoke a task session and all its descendants",
		Long: `revoke revokes the task session ID and every descendant session (its
sub-agents' sessions, and theirs): once it returns, every tool call with a token
of any of them is refused, on every replica. It prints the ids of the revoked
sessions on stdout, one per line (sessions already revoked included: revoking
is idempotent), and logs an audit line on stderr.

If Redis fails half-way, the ids revoked so far are printed, the exit status is
1, and running the same command again finishes the job.

Example:
  tollgate session revoke 3kq7… --reason "agent went off-task" --redis-url redis://127.0.0.1:6379`,
		Args: exactArgs(1, "one session ID"),
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&reason, "reason", "revoked by an operator", "why, kept with each revoked session (at most 512 bytes)")
	fs.BoolVar(&asJSON, "json", false, `print {"session", "principal", "revoked": [ids], "complete"} as JSON`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		sid := args[0]
		ctx, stop := signalContext()
		defer stop()
		store, closeStore, err := openStore(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeStore()
		s, err := store.Lookup(ctx, sid)
		if err != nil {
			return storeError(err, sid)
		}
		ids, rerr := store.Revoke(ctx, s.Principal, sid, reason)
		out := cmd.OutOrStdout()
		if asJSON {
			if err := writeJSON(out, revokeJSON{Session: sid, Principal: s.Principal, Revoked: nonNilStrings(ids), Complete: rerr == nil}); err != nil {
				return err
			}
		} else {
			for _, id := range ids {
				fmt.Fprintln(out, id)
			}
		}
		log := newLogger("info")
		if rerr != nil {
			log.Error("task session revocation incomplete", "session", sid, "principal", s.Principal,
				"revoked", ids, "reason", reason, "operator", operator(), "err", rerr)
			return storeError(rerr, sid)
		}
		log.Info("task sessions revoked", "session", sid, "principal", s.Principal,
			"revoked", ids, "count", len(ids), "reason", reason, "operator", operator())
		return nil
	}
	return cmd
}

// revokeJSON is session revoke --json.
type revokeJSON struct {
	Session   string   `json:"session"`
	Principal string   `json:"principal"`
	Revoked   []string `json:"revoked"`  // the session and its descendants
	Complete  bool     `json:"complete"` // false: Redis failed half-way; run it again
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// operator names who ran the command, for the audit line: OS user@host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
