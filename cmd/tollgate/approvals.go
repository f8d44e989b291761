package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/redisconn"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/web/approvals"
)

// maxScannedApprovals bounds `approvals list` across every principal.
const maxScannedApprovals = 1000

func newApprovals() *cobra.Command {
	return group(&cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny approvals agents are waiting for",
		Long: `approvals acts on the approvals of a running deployment, through its Redis
(--redis-url: the address tollgate serve printed at start-up, or the production
Redis). An agent whose client cannot ask the human itself (no elicitation) gets
approval_required with an approval id; the human decides on the approvals page
(/approvals/ID), or an operator decides here, on behalf of the approval's own
principal. The agent then retries its call with the approval id, once.

  tollgate approvals list --redis-url redis://127.0.0.1:6379
  tollgate approvals approve ID --redis-url redis://127.0.0.1:6379
  tollgate approvals deny ID --reason "not this month" --redis-url redis://127.0.0.1:6379`,
	}, newApprovalsList(), newApprovalsDecide(true), newApprovalsDecide(false))
}

// openApprovals connects to the deployment's Redis; call closeFn when done.
func openApprovals(ctx context.Context, redisURL string) (*human.Approvals, *redisconn.Conn, func(), error) {
	if redisURL == "" {
		return nil, nil, nil, usage("give --redis-url: the address `tollgate serve` printed at start-up")
	}
	redis.SetLogger(quietRedis{})
	conn, err := redisconn.OpenWith(ctx, redisURL, redisconn.Options{CAFile: cliRedisCA})
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := human.NewApprovals(conn.Client, human.ApprovalsConfig{})
	if err != nil {
		_ = conn.Close()
		return nil, nil, nil, err
	}
	return store, conn, func() { _ = conn.Close() }, nil
}

// approvalError translates a refusal of the approvals store for the
// operator: its public message and, for Redis trouble, the cause.
func approvalError(err error, id string) error {
	switch fault.CodeOf(err) {
	case fault.NotFound:
		return fmt.Errorf("no approval %s (it does not exist, or its record is past retention); nothing was changed", id)
	case human.ApprovalExpired, human.ApprovalDecided:
		return fmt.Errorf("approval %s: %s (%s)", id, fault.PublicOf(err), fault.CodeOf(err))
	}
	if cause := errors.Unwrap(err); cause != nil {
		return fmt.Errorf("%s (%v)", fault.PublicOf(err), cause)
	}
	return errors.New(fault.PublicOf(err))
}

// approvalJSON is an approval as `approvals list --json` prints it.
type approvalJSON struct {
	ID        string            `json:"id"`
	Principal string            `json:"principal"`
	Kind      human.Kind        `json:"kind"`
	Tool      string            `json:"tool"`
	Session   string            `json:"session"`
	Status    human.Status      `json:"status"`
	Summary   string            `json:"summary"`
	Fields    map[string]string `json:"fields,omitempty"`
	Created   time.Time         `json:"created"`
	Expires   time.Time         `json:"expires"`
	Decided   time.Time         `json:"decided,omitzero"`
	DecidedBy string            `json:"decided_by,omitempty"`
	Used      time.Time         `json:"used,omitzero"`
}

func toJSON(list []human.Approval) []approvalJSON {
	out := make([]approvalJSON, 0, len(list))
	for _, a := range list {
		out = append(out, approvalJSON{ID: a.ID, Principal: a.Binding.Principal, Kind: a.Kind, Tool: a.Binding.Tool,
			Session: a.Binding.Session, Status: a.Status, Summary: a.Summary, Fields: a.Fields,
			Created: a.Created, Expires: a.Expires, Decided: a.Decided, DecidedBy: a.DecidedBy, Used: a.Used})
	}
	return out
}

func newApprovalsList() *cobra.Command {
	var (
		redisURL, principal string
		all, asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "list [--principal P] [--all] [--json]",
		Short: "List approvals, newest first (pending ones unless --all)",
		Long: `list prints the approvals waiting for a decision, newest first: one line per
approval with its id, principal, kind, tool, status, expiry and the first line
of what the human is asked. --all adds approved, denied, used and expired ones
(records are kept a day past their expiry). Without --principal it lists every
principal's (at most 1000 records are read). With --json it prints a JSON
array with the whole summary and fields.

Examples:
  tollgate approvals list --redis-url redis://127.0.0.1:6379
  tollgate approvals list --principal user:alice@example.com --all --json | jq -r '.[].id'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "only this principal's approvals, e.g. user:alice@example.com (default: every principal)")
	fs.BoolVar(&all, "all", false, "also approvals already decided, used or expired")
	fs.BoolVar(&asJSON, "json", false, "print a JSON array of approvals")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		store, _, closeStore, err := openApprovals(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeStore()
		var list []human.Approval
		if principal != "" {
			if list, err = store.List(ctx, principal, !all); err != nil {
				if fault.CodeOf(err) == fault.InvalidArgument {
					return usage("--principal: %s", fault.PublicOf(err))
				}
				return approvalError(err, "")
			}
		} else if list, err = everyApproval(ctx, store, !all, cmd.ErrOrStderr()); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), toJSON(list))
		}
		if len(list) == 0 {
			msg := "tollgate: no approvals match"
			if principal != "" && !strings.Contains(principal, ":") {
				msg += "; principals are written user:<sub>, e.g. user:" + principal
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		}
		return printApprovals(cmd.OutOrStdout(), list, time.Now())
	}
	return cmd
}

// everyApproval reads every principal's approvals, newest first: the ids
// from the approvals store (Approvals.IDs, across every principal), then
// each record.
func everyApproval(ctx context.Context, store *human.Approvals, pendingOnly bool, warn io.Writer) ([]human.Approval, error) {
	ids, truncated, err := store.IDs(ctx, maxScannedApprovals)
	if err != nil {
		return nil, fmt.Errorf("the approvals could not be listed (%v); nothing was changed. Retry shortly", errors.Unwrap(err))
	}
	if truncated {
		fmt.Fprintf(warn, "tollgate: more than %d approval records; showing some of them. Use --principal to narrow.\n", maxScannedApprovals)
	}
	var out []human.Approval
	for _, id := range ids {
		a, err := store.Get(ctx, id)
		switch {
		case fault.CodeOf(err) == fault.NotFound:
			continue // purged between the scan and the read
		case err != nil:
			return nil, approvalError(err, id)
		}
		if !pendingOnly || a.Status == human.StatusPending {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b human.Approval) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func printApprovals(w io.Writer, list []human.Approval, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APPROVAL\tPRINCIPAL\tKIND\tTOOL\tSTATUS\tEXPIRES\tSUMMARY")
	for _, a := range list {
		first, _, _ := strings.Cut(a.Summary, "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, clean(a.Binding.Principal), a.Kind, clean(a.Binding.Tool),
			a.Status, when(a.Expires, now, "expired "), clean(shorten(first, 100)))
	}
	return tw.Flush()
}

// shorten cuts s to at most n bytes on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func newApprovalsDecide(approve bool) *cobra.Command {
	verb, did := "deny", "denied"
	if approve {
		verb, did = "approve", "approved"
	}
	var (
		redisURL, reason string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   verb + " ID [--reason R] [--json]",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " an approval on behalf of its principal",
		Long: verb + ` records the decision on approval ID as the operator, on behalf of the
approval's own principal, as "cli:<os user>@<host>"; it is audited with
--reason. On success it prints "` + did + ` ID" on stdout. An approval that
expired or was already decided is refused (exit 1): its decision stands and
nothing is changed. A billing or authentication approval cannot be approved
(exit 2): it is completed on the provider's page it links to; deny refuses it. With --json it prints the decided approval as a JSON
object instead (the fields of approvals list --json).

Example:
  tollgate approvals ` + verb + ` 3kq7… --redis-url redis://127.0.0.1:6379`,
		Args: exactArgs(1, "one approval ID"),
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&reason, "reason", "", "why, kept in the audit trail (at most 512 bytes)")
	fs.BoolVar(&asJSON, "json", false, "print the decided approval as a JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if len(reason) > 512 || !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return usage("--reason: give at most 512 bytes of printable text on one line")
		}
		id := args[0]
		ctx, stop := signalContext()
		defer stop()
		store, conn, closeStore, err := openApprovals(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeStore()
		a, err := store.Get(ctx, id)
		if err != nil {
			return approvalError(err, id)
		}
		if approve && a.Kind.URLMode() {
			return usage("approval %s is a %s approval: it is completed on the provider's page it links to (%s), not approved here; deny it to refuse it. Nothing was done.", id, a.Kind, "the approvals page sends the human there")
		}
		by := "cli:" + operator()
		// The operator decides for the approval's own principal: Decide
		// refuses any other, so this cannot move an approval between people.
		got, err := store.Decide(ctx, id, a.Binding.Principal, approve, by)
		if err != nil {
			return approvalError(err, id)
		}
		if asJSON {
			if err := writeJSON(cmd.OutOrStdout(), toJSON([]human.Approval{got})[0]); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", did, got.ID)
		}
		log := newLogger("info")
		entry := approvals.DecisionEntry(got, by)
		if reason != "" {
			entry.Detail["operator_reason"] = reason
		}
		if trail, err := sessions.NewAudit(conn.Client, sessions.AuditConfig{}); err != nil {
			log.Error("audit trail unavailable; the decision stands", "approval", id, "err", err)
		} else if _, err := trail.Append(context.WithoutCancel(ctx), entry); err != nil {
			log.Error("audit append failed; the decision stands", "approval", id, "err", err)
		}
		log.Info("approval decided", "approval", id, "principal", got.Binding.Principal, "status", got.Status,
			"by", by, "reason", reason)
		return nil
	}
	return cmd
}
