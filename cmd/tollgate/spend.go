package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/redisconn"
	"github.com/tollgate-dev/tollgate/sessions"
)

func newSpend() *cobra.Command {
	return group(&cobra.Command{
		Use:   "spend",
		Short: "Show monthly spend, list holds and reconcile expired ones",
		Long: `spend reads and settles the money ledger of a running deployment, through its
Redis (--redis-url: the address tollgate serve printed at start-up, or the
production Redis). Every paid tool call holds its price against the principal's
monthly cap at the provider before the provider is called, then commits what
was charged or releases the hold. A hold whose call never finished (a crash)
expires after --hold-ttl and waits here for an operator to reconcile it.

  tollgate spend show --principal user:alice@example.com --redis-url redis://127.0.0.1:6379
  tollgate spend holds --stale --redis-url redis://127.0.0.1:6379
  tollgate spend reconcile HOLD_ID --principal user:alice@example.com --charged 10.44 --redis-url redis://127.0.0.1:6379
  tollgate spend cap set --principal user:alice@example.com --provider cloudflare 150.00 --redis-url redis://127.0.0.1:6379`,
	}, newSpendShow(), newSpendHolds(), newSpendReconcile(), newSpendCap())
}

// dialDeployment connects to the deployment's Redis; call closeFn when done.
func dialDeployment(ctx context.Context, redisURL string) (rdb redis.UniversalClient, closeFn func(), err error) {
	if redisURL == "" {
		return nil, nil, usage("give --redis-url: the address `tollgate serve` printed at start-up")
	}
	// One-shot commands report a Redis failure once, themselves.
	redis.SetLogger(quietRedis{})
	conn, err := redisconn.OpenWith(ctx, redisURL, redisconn.Options{CAFile: cliRedisCA})
	if err != nil {
		return nil, nil, err
	}
	return conn.Client, func() { _ = conn.Close() }, nil
}

// capFlags is the repeatable --cap PROVIDER=AMOUNT flag, checked as it is
// set, so that a bad value names the flag or its environment twin.
type capFlags struct {
	raw  []string
	caps map[string]money.Money
}

func (c *capFlags) String() string { return strings.Join(c.raw, ",") }
func (c *capFlags) Type() string   { return "PROVIDER=AMOUNT" }

func (c *capFlags) Set(v string) error {
	p, amt, err := spend.ParseCapFlag(v)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "spend: "))
	}
	if c.caps == nil {
		c.caps = map[string]money.Money{}
	}
	c.raw, c.caps[p] = append(c.raw, v), amt
	return nil
}

// openLedger connects to the deployment's ledger with caps (the server's
// own --cap flags).
func openLedger(ctx context.Context, redisURL string, caps map[string]money.Money) (*spend.Ledger, func(), error) {
	rdb, closeFn, err := dialDeployment(ctx, redisURL)
	if err != nil {
		return nil, nil, err
	}
	l, err := spend.New(rdb, spend.Config{Caps: caps})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return l, closeFn, nil
}

// ledgerError translates a ledger error for the operator: a malformed
// argument is bad usage, anything else a refusal with the public message
// and, for Redis trouble, the cause.
func ledgerError(err error) error {
	switch fault.CodeOf(err) {
	case fault.InvalidArgument:
		return usage("%s", fault.PublicOf(err))
	case fault.Unavailable, fault.Internal:
		if cause := errors.Unwrap(err); cause != nil {
			return fmt.Errorf("%s (%v)", fault.PublicOf(err), cause)
		}
	}
	return fmt.Errorf("%s: %s", fault.CodeOf(err), fault.PublicOf(err))
}

// needPrincipal checks --principal is given and hints at the user:<sub> form.
func needPrincipal(p string) error {
	switch {
	case p == "":
		return usage("give --principal: whose money, e.g. --principal user:alice@example.com")
	case !strings.Contains(p, ":"):
		return usage("--principal %q: principals are written user:<sub>, e.g. user:%s", p, p)
	}
	return nil
}

// spendShow is the --json output of spend show.
type spendShow struct {
	Principal string         `json:"principal"`
	Providers []spend.Status `json:"providers"`
}

func newSpendShow() *cobra.Command {
	var (
		redisURL, principal string
		caps                capFlags
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "show --principal P [--cap PROVIDER=AMOUNT]... [--json]",
		Short: "Month-to-date spent, held, cap and remaining per provider",
		Long: `show prints, for one principal and the current UTC calendar month, what was
spent (committed charges), what is held (calls in flight), the monthly cap and
what remains of it, at each provider (cloudflare, stripe). Holds whose TTL has
passed are expired first, so "held" counts only calls that may still charge.

The cap is the principal's stored cap (tollgate spend cap set) where there is
one, else the server's --cap default. Give show the same --cap values as the
server (or the same TOLLGATE_CAP) so that the default shown is the one the
server applies; without them 100.00 USD per provider is shown.

With --json it prints {"principal": P, "providers": [...]}, each provider with
its month and spent, held, cap and remaining as money objects
{"amount_minor", "currency", "display"}.

Examples:
  tollgate spend show --principal user:alice@example.com --redis-url redis://127.0.0.1:6379
  tollgate spend show --principal user:alice@example.com --cap stripe=50.00 --json | jq '.providers[].remaining.display'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "whose spending, e.g. user:alice@example.com (required)")
	fs.Var(&caps, "cap", "the server's monthly cap per provider, e.g. --cap stripe=50.00 (repeatable; give the server's own --cap values; default 100.00 USD each)")
	fs.BoolVar(&asJSON, "json", false, "print a JSON object with one status per provider")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if err := needPrincipal(principal); err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		l, closeLedger, err := openLedger(ctx, redisURL, caps.caps)
		if err != nil {
			return err
		}
		defer closeLedger()
		out := spendShow{Principal: principal}
		for _, p := range spend.Providers() {
			st, err := l.Status(ctx, principal, p)
			if err != nil {
				return ledgerError(err)
			}
			out.Providers = append(out.Providers, st)
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), out)
		}
		return printStatus(cmd.OutOrStdout(), out)
	}
	return cmd
}

// printStatus prints spend show's table, amounts right-aligned.
func printStatus(w io.Writer, out spendShow) error {
	fmt.Fprintf(w, "principal %s\n", clean(out.Principal))
	width := 0
	for _, s := range out.Providers {
		for _, m := range []money.Money{s.Spent, s.Held, s.Cap, s.Remaining} {
			width = max(width, len(m.String()))
		}
	}
	amt := func(m money.Money) string { return fmt.Sprintf("%*s", width, m) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PROVIDER\tMONTH\t%*s\t%*s\t%*s\t%*s\n", width, "SPENT", width, "HELD", width, "CAP", width, "REMAINING")
	for _, s := range out.Providers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Provider, s.Month, amt(s.Spent), amt(s.Held), amt(s.Cap), amt(s.Remaining))
	}
	return tw.Flush()
}

func newSpendHolds() *cobra.Command {
	var (
		redisURL, principal string
		stale, asJSON       bool
		limit               int
	)
	cmd := &cobra.Command{
		Use:   "holds [--principal P] [--stale] [--limit N] [--json]",
		Short: "List unsettled holds; --stale lists those waiting for reconciliation",
		Long: `holds lists the holds not yet settled, oldest expiry first: open ones (a paid
call in flight) and expired ones (the call never committed or released within
--hold-ttl, typically a crash). An expired hold's amount no longer counts
against the cap, but the provider may have charged: an operator checks the
provider's records and settles it with tollgate spend reconcile.

With --stale only holds that need reconciliation are listed. Each line shows
the hold id, principal, provider, amount, month it counts in, state, when it
was created and expires, and the tool that made it. With --json it prints a
JSON array of hold records ([] when there are none).

Examples:
  tollgate spend holds --stale --redis-url redis://127.0.0.1:6379
  tollgate spend holds --principal user:alice@example.com --json | jq -r '.[].id'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "only this principal's holds, e.g. user:alice@example.com (default: every principal)")
	fs.BoolVar(&stale, "stale", false, "only expired holds, waiting for reconciliation")
	fs.IntVar(&limit, "limit", spend.DefaultHoldsLimit, fmt.Sprintf("at most this many holds (1-%d)", spend.MaxHoldsLimit))
	fs.BoolVar(&asJSON, "json", false, "print a JSON array of hold records")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if principal != "" {
			if err := needPrincipal(principal); err != nil {
				return err
			}
		}
		if limit < 1 || limit > spend.MaxHoldsLimit {
			return usage("--limit %d: give 1 to %d", limit, spend.MaxHoldsLimit)
		}
		ctx, stop := signalContext()
		defer stop()
		l, closeLedger, err := openLedger(ctx, redisURL, nil)
		if err != nil {
			return err
		}
		defer closeLedger()
		holds, err := l.Holds(ctx, spend.HoldFilter{Principal: principal, Stale: stale, Limit: limit})
		if err != nil {
			return ledgerError(err)
		}
		if asJSON {
			if holds == nil {
				holds = []spend.Hold{}
			}
			return writeJSON(cmd.OutOrStdout(), holds)
		}
		if len(holds) == 0 {
			what := "no unsettled holds"
			if stale {
				what = "no holds waiting for reconciliation"
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "tollgate:", what)
			return nil
		}
		if err := printHolds(cmd.OutOrStdout(), holds, time.Now()); err != nil {
			return err
		}
		if stale {
			fmt.Fprintln(cmd.ErrOrStderr(), "tollgate: check each with the provider, then: tollgate spend reconcile HOLD_ID --principal P (--charged AMOUNT | --not-charged)")
		}
		return nil
	}
	return cmd
}

func printHolds(w io.Writer, holds []spend.Hold, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOLD\tPRINCIPAL\tPROVIDER\tAMOUNT\tMONTH\tSTATE\tCREATED\tEXPIRES\tTOOL")
	for _, h := range holds {
		state := string(h.State)
		if h.Stale(now) {
			state = string(spend.StateExpired)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(h.ID), clean(h.Principal), h.Provider, h.Amount,
			h.Month, state, h.Created.UTC().Format(time.RFC3339), when(h.Expires, now, ""), dash(clean(h.Tool)))
	}
	return tw.Flush()
}

func newSpendReconcile() *cobra.Command {
	var (
		redisURL, principal, charged, note string
		notCharged, asJSON                 bool
		provider, month, issuer, stripeAPI string
	)
	cmd := &cobra.Command{
		Use:   "reconcile (HOLD_ID --principal P (--charged AMOUNT | --not-charged) [--note N] | --provider (stripe|cloudflare) [--month YYYY-MM]) [--json]",
		Short: "Compare a month with the provider, or record what it really charged for an expired hold",
		Long: `reconcile --provider stripe [--month YYYY-MM] compares the ledger's commits of
the month (UTC, default this month) with Stripe's paid invoices of every
customer tollgate created (found by their tollgate_principal metadata, so an
invoice of a subscription tollgate never recorded shows too). It lists each
mismatch: charged_without_commit, committed_without_charge, amount_differs, and
exits 1 on any (0 when clean). Stripe is the one in ` + "`STRIPE_SECRET_KEY`" + ` (with
--stripe-api-url), or else the running sandbox's fake at --issuer. Invoices
count in the month of their period (renewals) or of their creation (the first
period). Nothing is changed.

  tollgate spend reconcile --provider stripe --month 2026-12 --json

reconcile --provider cloudflare [--month YYYY-MM] does the same for domain
registrations, by <account id>/<domain>: each registration tollgate committed
is listed in the ledger under it, in the month of its hold, and compared with
what the running sandbox's fake Cloudflare at --issuer billed (in the month it
charged), each charge shown for the principal the ledger noted it for (one
with no note: whoever links its account now). It works
against a sandbox only: Cloudflare has no API that lists an account's
registrar charges, so against a production server it exits 2 (compare with
Cloudflare's billing export by hand). A registration whose outcome was
unknown when the call ended is counted at its held price under its key: if
Cloudflare did not bill it, it shows as committed_without_charge (its
commit is in tollgate audit export with the reason "outcome unknown").
Nothing is changed.

  tollgate spend reconcile --provider cloudflare --month 2026-12 --issuer http://127.0.0.1:8080 --redis-url redis://127.0.0.1:6379

reconcile HOLD_ID settles an expired hold (see tollgate spend holds --stale) after you
checked the provider's records:

  --charged AMOUNT  the provider did charge: AMOUNT (a decimal in the hold's
                    currency, USD: "10.44", at most the held amount) is added
                    to the spent total of the hold's month, even past the cap,
                    because that money is already gone.
  --not-charged     the provider took nothing: the hold is closed as released.

Only expired holds are reconciled here; an open hold belongs to the call that
made it, which commits or releases it. Running the same command again leaves
the ledger as it is. Every successful run appends an entry to the audit trail
naming the operator (OS user@host) and the note, and prints the settled hold
(--json: its record).

A bad amount (negative, zero with --charged, more than two decimals, too
large, not a number) is bad usage (exit 2) and nothing is changed.

Examples:
  tollgate spend reconcile 3kq7… --principal user:alice@example.com --charged 10.44 --note "CF invoice 8812" --redis-url redis://127.0.0.1:6379
  tollgate spend reconcile 3kq7… --principal user:alice@example.com --not-charged --redis-url redis://127.0.0.1:6379`,
		Args: cobra.MaximumNArgs(1),
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&provider, "provider", "", "compare a whole month with this provider (stripe or cloudflare) instead of settling one hold")
	fs.StringVar(&month, "month", "", "with --provider: the UTC month, YYYY-MM (default: this month)")
	fs.StringVar(&stripeAPI, "stripe-api-url", "", "with --provider stripe and STRIPE_SECRET_KEY: the Stripe API root (default: the real one)")
	issuerFlag(fs, &issuer)
	fs.StringVar(&principal, "principal", "", "the principal the hold belongs to, e.g. user:alice@example.com (required)")
	fs.StringVar(&charged, "charged", "", `what the provider charged, a decimal amount in USD such as "10.44"`)
	fs.BoolVar(&notCharged, "not-charged", false, "the provider charged nothing")
	fs.StringVar(&note, "note", "", "why, e.g. the provider's invoice or request id (kept with the hold and in the audit trail; at most 512 bytes)")
	fs.BoolVar(&asJSON, "json", false, "print the settled hold record as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if provider != "" {
			if len(args) != 0 {
				return usage("give either a HOLD_ID or --provider, not both")
			}
			return reconcileMonth(cmd, redisURL, provider, month, issuer, stripeAPI, asJSON)
		}
		if len(args) != 1 {
			return usage("give one hold id, or --provider stripe|cloudflare to compare a month with the provider")
		}
		id := args[0]
		if err := needPrincipal(principal); err != nil {
			return err
		}
		actual, err := reconcileAmount(charged, notCharged)
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		rdb, closeRedis, err := dialDeployment(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeRedis()
		l, err := spend.New(rdb, spend.Config{})
		if err != nil {
			return err
		}
		trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
		if err != nil {
			return err
		}
		h, err := l.Get(ctx, principal, id)
		if err != nil {
			return ledgerError(err)
		}
		// An open hold belongs to the call that made it: settling it here
		// could race a commit of money really charged.
		if h.State == spend.StateHeld && !h.Stale(time.Now()) {
			return fmt.Errorf("%s: hold %s is still open until %s; the call that made it commits or releases it. Nothing was changed",
				spend.HoldConflict, clean(id), h.Expires.UTC().Format(time.RFC3339))
		}
		event := "reconcile"
		if actual == nil {
			event = "release"
			err = l.Release(ctx, principal, id, note)
		} else {
			err = l.Reconcile(ctx, principal, id, *actual, note)
		}
		if err != nil {
			return ledgerError(err)
		}
		if h, err = l.Get(ctx, principal, id); err != nil {
			return ledgerError(err)
		}
		if err := auditReconcile(ctx, trail, event, h, note); err != nil {
			return fmt.Errorf("the ledger recorded hold %s as %s, but the audit trail could not be reached (%v); run the same command again to record it (the ledger will not change again)",
				clean(id), h.State, err)
		}
		charge := "nothing"
		if h.State == spend.StateCommitted {
			charge = h.Actual.String()
		}
		newLogger("info").Info("hold reconciled", "hold", id, "principal", principal, "state", h.State,
			"charged", charge, "note", note, "operator", operator())
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), h)
		}
		if h.State == spend.StateCommitted {
			fmt.Fprintf(cmd.OutOrStdout(), "hold %s: %s charged by %s recorded in %s\n", clean(id), h.Actual, h.Provider, h.Month)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "hold %s: released, nothing charged by %s\n", clean(id), h.Provider)
		}
		return nil
	}
	return cmd
}

// reconcileAmount reads --charged / --not-charged: nil for not charged.
func reconcileAmount(charged string, notCharged bool) (*money.Money, error) {
	const unchanged = "; nothing was changed"
	switch {
	case charged != "" && notCharged:
		return nil, usage("give --charged AMOUNT or --not-charged, not both%s", unchanged)
	case notCharged:
		return nil, nil
	case charged == "":
		return nil, usage("give --charged AMOUNT (what the provider took, e.g. 10.44) or --not-charged%s", unchanged)
	}
	if strings.HasPrefix(charged, "-") {
		return nil, usage("--charged %s: an amount cannot be negative; give what the provider took, e.g. 10.44, or --not-charged%s", charged, unchanged)
	}
	// Money is parsed from its decimal text, never through a float.
	m, err := money.Parse(charged, "usd")
	if err != nil {
		return nil, usage("--charged: %s (USD, e.g. 10.44)%s", strings.TrimPrefix(err.Error(), "money: "), unchanged)
	}
	switch {
	case m.Minor == 0:
		return nil, usage("--charged 0: use --not-charged when the provider took nothing%s", unchanged)
	case m.Minor > spend.MaxMinor:
		return nil, usage("--charged %q is above the ledger's maximum of %s%s", charged, money.USD(spend.MaxMinor), unchanged)
	}
	return &m, nil
}

// auditReconcile records an operator's settlement of a hold.
func auditReconcile(ctx context.Context, trail *sessions.Audit, event string, h spend.Hold, note string) error {
	e := sessions.Entry{Event: event, Principal: h.Principal, Tool: h.Tool, Decision: sessions.DecisionOK,
		Provider: h.Provider, Reason: note,
		Detail: map[string]string{"hold": h.ID, "month": h.Month, "operator": operator(), "by": "tollgate spend reconcile"}}
	if h.State == spend.StateCommitted {
		amt := h.Actual
		e.Amount = &amt
	}
	if len(h.Budgets) > 0 {
		e.Session = h.Budgets[0].Session
	}
	_, err := trail.Append(ctx, e)
	return err
}
