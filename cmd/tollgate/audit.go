package main

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

func newAudit() *cobra.Command {
	return group(&cobra.Command{
		Use:   "audit",
		Short: "Verify, export and show the hash-chained audit trail",
		Long: `audit reads the audit trail of a running deployment, through its Redis
(--redis-url: the address tollgate serve printed at start-up, or the production
Redis). Every token exchange, policy decision, tool call (allowed or refused),
hold, commit, release and revocation appends one entry to the chain of the
human it concerns (one Redis Stream per principal; entries that name no
principal go to a system chain); each entry carries the hash of the one
before in its chain, so removing or altering an entry breaks the chain.

  tollgate audit verify --redis-url redis://127.0.0.1:6379
  tollgate audit export --session SID --redis-url redis://127.0.0.1:6379 > task.jsonl
  tollgate audit show --session SID --redis-url redis://127.0.0.1:6379`,
	}, newAuditVerify(), newAuditExport(), newAuditShow())
}

// auditError translates an error of the audit trail for the operator.
func auditError(err error) error {
	if fault.CodeOf(err) == fault.InvalidArgument {
		return usage("%s", fault.PublicOf(err))
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		return err
	}
	if cause := errors.Unwrap(err); cause != nil {
		return fmt.Errorf("%s (%v)", fault.PublicOf(err), cause)
	}
	return errors.New(fault.PublicOf(err))
}

// progressEvery is how many entries audit verify checks between two
// progress lines on stderr.
const progressEvery = 10000

func newAuditVerify() *cobra.Command {
	var (
		redisURL string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "verify [--json]",
		Short: "Check every hash chain; exit 1 naming the first broken link",
		Long: `verify walks every chain of the audit trail (the system chain, then each
principal's, from the index of principals with a chain), oldest entry first,
and checks that every entry hashes to its recorded hash, points at the entry
before it, takes the next sequence number, and that the last one is its
chain's recorded head.

When every chain holds it prints "ok: N entries, head HASH" and exits 0; HASH
digests the heads of all chains. Keep it somewhere Redis writers cannot reach:
a later verify whose chains no longer pass through those heads was rewritten.
When a chain is broken it prints "broken at STREAM_ID: REASON (chain
PRINCIPAL: DETAIL)" on stderr and exits 1; REASON is one of hash mismatch (an
entry was altered), prev mismatch (an entry was removed or inserted before
it), seq gap, head mismatch (entries removed from the end).

Long trails print progress on stderr every 10,000 entries. With --json the
result is printed as a JSON object (entries, chains, ok, chain, broken_at,
reason, detail, head) on stdout, and the exit status is the same.

Example:
  tollgate audit verify --redis-url redis://127.0.0.1:6379`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.BoolVar(&asJSON, "json", false, "print the result as a JSON object")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		rdb, closeRedis, err := dialDeployment(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeRedis()
		trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
		if err != nil {
			return err
		}
		stderr := cmd.ErrOrStderr()
		reported := 0
		res, err := trail.Verify(ctx, func(n int) {
			if n/progressEvery > reported/progressEvery {
				fmt.Fprintf(stderr, "tollgate: verified %d entries…\n", n)
				reported = n
			}
		})
		if err != nil {
			return auditError(err)
		}
		if asJSON {
			if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
				return err
			}
		}
		if !res.OK {
			return fmt.Errorf("broken at %s: %s (chain %s: %s)", clean(res.BrokenAt), res.Reason, clean(res.Chain), clean(res.Detail))
		}
		if !asJSON {
			head := res.Head
			if head == "" {
				head = sessions.GenesisHash
				fmt.Fprintln(stderr, "tollgate: the audit trail is empty")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d entries, head %s\n", res.Entries, head)
		}
		return nil
	}
	return cmd
}

func newAuditExport() *cobra.Command {
	var (
		redisURL, session, principal, since string
	)
	cmd := &cobra.Command{
		Use:   "export [--session ID] [--principal P] [--since RFC3339]",
		Short: "Write audit entries as JSON lines",
		Long: `export writes the audit entries that match every filter given to stdout, one
JSON object a line, oldest first: its stream id, seq, time, event, principal,
actor chain (acting agent first), client_id, session and parent session, token
jti, tool, digest of the arguments, decision, code, reason, amount (a money
object {"amount_minor", "currency", "display"}), provider and provider request
id, and the chain's nonce, prev and hash, so that the export can be checked
and compared later. It prints how many entries it wrote on stderr. It does not
verify the chain: run audit verify for that.

Examples:
  tollgate audit export --session 3kq7… --redis-url redis://127.0.0.1:6379
  tollgate audit export --principal user:alice@example.com --since 2026-05-01T00:00:00Z | jq -c 'select(.event=="commit")'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&session, "session", "", "only entries of this task session id")
	fs.StringVar(&principal, "principal", "", "only entries of this principal, e.g. user:alice@example.com")
	fs.StringVar(&since, "since", "", "only entries at or after this time, RFC 3339, e.g. 2026-05-01T00:00:00Z")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		f := sessions.ExportFilter{Session: session, Principal: principal}
		if since != "" {
			t, err := time.Parse(time.RFC3339Nano, since)
			if err != nil {
				return usage("--since %q: give an RFC 3339 time such as 2026-05-01T00:00:00Z", since)
			}
			f.Since = t
		}
		ctx, stop := signalContext()
		defer stop()
		rdb, closeRedis, err := dialDeployment(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeRedis()
		trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
		if err != nil {
			return err
		}
		w := bufio.NewWriter(cmd.OutOrStdout())
		n, err := trail.Export(ctx, w, f)
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write: %w", ferr)
		}
		if err != nil {
			return auditError(err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "tollgate: exported %d entries\n", n)
		return nil
	}
	return cmd
}

func newAuditShow() *cobra.Command {
	var (
		redisURL, session string
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "show --session ID [--json]",
		Short: "Draw a task's delegation tree with what each agent did",
		Long: `show finds the task that session ID belongs to (climbing its parent sessions
to the top of the delegation tree, as far as they are still kept) and draws
the whole tree: the principal at the root, then every session with its acting
agent and status, sub-agents' sessions nested under the session that delegated
to them, and under each session what its agent did, oldest first: time, event
(exchange, tool_call, hold, commit, release, revoke…), tool, decision and code,
and amount. The session asked for is marked with ◀.

With --json the same tree is printed as data; for the entries alone as JSON
lines, use audit export --session ID.

Example:
  tollgate audit show --session 3kq7… --redis-url redis://127.0.0.1:6379`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&session, "session", "", "the task session id (required)")
	fs.BoolVar(&asJSON, "json", false, `print the tree as JSON: {"session", "tree"}, each node a session record with its "entries" and "children"`)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if session == "" {
			return usage("give --session ID: the task session to show (tollgate session list prints them)")
		}
		ctx, stop := signalContext()
		defer stop()
		rdb, closeRedis, err := dialDeployment(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeRedis()
		store, err := sessions.New(rdb, sessions.Config{})
		if err != nil {
			return err
		}
		trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
		if err != nil {
			return err
		}
		if asJSON {
			t, err := showTree(ctx, store, trail, session)
			if err != nil {
				return storeError(err, session)
			}
			return writeJSON(cmd.OutOrStdout(), t)
		}
		w := bufio.NewWriter(cmd.OutOrStdout())
		err = sessions.ShowSession(ctx, store, trail, session, w)
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = ferr
		}
		if err != nil {
			return storeError(err, session)
		}
		return nil
	}
	return cmd
}
