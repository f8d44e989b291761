package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
)

func newSpendCap() *cobra.Command {
	return group(&cobra.Command{
		Use:   "cap",
		Short: "Set and show monthly caps stored in Redis (every replica reads them)",
		Long: `cap sets and shows the monthly caps stored for a principal in the ledger's
Redis. A stored cap overrides the server's --cap default for that principal at
that provider, on every replica, from the next paid call on. A principal with no
stored cap has the server's --cap (default 100.00 USD per provider).

  tollgate spend cap set --principal user:alice@example.com --provider cloudflare 150.00 --redis-url redis://127.0.0.1:6379
  tollgate spend cap show --redis-url redis://127.0.0.1:6379`,
	}, newSpendCapSet(), newSpendCapShow())
}

func newSpendCapSet() *cobra.Command {
	var (
		redisURL, principal, provider, by string
		asJSON                            bool
	)
	cmd := &cobra.Command{
		Use:   "set --principal P --provider PROVIDER AMOUNT [--json]",
		Short: "Store a principal's standing monthly cap at one provider",
		Long: `set stores principal's standing monthly cap at provider (cloudflare or stripe),
in the provider's currency (USD). It takes effect on every replica from the next
paid call. A cap below what is already spent this month is allowed: it stops new
spending until the month ends. The change is appended to the audit trail with the
old and the new cap. Nothing is charged.

Examples:
  tollgate spend cap set --principal user:alice@example.com --provider cloudflare 150.00 --redis-url redis://127.0.0.1:6379
  tollgate spend cap set --principal user:alice@example.com --provider stripe 0 --json`,
		Args: cobra.ExactArgs(1),
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "whose cap, e.g. user:alice@example.com (required)")
	fs.StringVar(&provider, "provider", "", "cloudflare or stripe (required)")
	fs.StringVar(&by, "by", "operator", "who changes the cap, for the audit trail")
	fs.BoolVar(&asJSON, "json", false, "print the change as JSON: principal, provider, from, to")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if err := needPrincipal(principal); err != nil {
			return err
		}
		if !spend.KnownProvider(provider) {
			return usage("give --provider %s; no cap was changed", strings.Join(spend.Providers(), " or "))
		}
		amount := args[0]
		if strings.HasPrefix(amount, "-") {
			return usage("the cap %s is negative; give an amount such as 150.00 (0 stops all spending); no cap was changed", amount)
		}
		to, err := money.Parse(amount, "usd")
		if err != nil {
			return usage("the cap %q: %s (USD, e.g. 150.00); no cap was changed", amount, strings.TrimPrefix(err.Error(), "money: "))
		}
		ctx, stop := signalContext()
		defer stop()
		// One connection serves the ledger and the audit trail.
		rdb, closeRDB, err := dialDeployment(ctx, redisURL)
		if err != nil {
			return err
		}
		defer closeRDB()
		l, err := spend.New(rdb, spend.Config{})
		if err != nil {
			return err
		}
		ch, err := l.SetCap(ctx, principal, provider, to)
		if err != nil {
			return ledgerError(err)
		}
		entry := sessions.Entry{Event: "cap_set", Principal: principal, Decision: sessions.DecisionAllow, Provider: provider,
			Detail: map[string]string{"from": ch.From.String(), "to": ch.To.String(), "by": by}}
		if trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{}); err != nil {
			newLogger("info").Error("audit trail unavailable; the cap is set", "err", err)
		} else if _, err := trail.Append(context.WithoutCancel(ctx), entry); err != nil {
			newLogger("info").Error("audit append failed; the cap is set", "err", err)
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), ch)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "cap of %s at %s: %s -> %s\n", clean(principal), provider, ch.From, ch.To)
		return nil
	}
	return cmd
}

func newSpendCapShow() *cobra.Command {
	var (
		redisURL, principal string
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "show [--principal P] [--json]",
		Short: "List stored caps (of one principal, or of everyone who has one)",
		Long: `show lists the caps stored in the ledger: standing caps, and one-month raises
(with their month). A principal without a stored cap at a provider has the
server's --cap default there, which is not listed.

Examples:
  tollgate spend cap show --redis-url redis://127.0.0.1:6379
  tollgate spend cap show --principal user:alice@example.com --json`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	redisURLFlag(fs, &redisURL)
	fs.StringVar(&principal, "principal", "", "only this principal's caps, e.g. user:alice@example.com")
	fs.BoolVar(&asJSON, "json", false, "print a JSON array of {principal, provider, month, cap}")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if principal != "" {
			if err := needPrincipal(principal); err != nil {
				return err
			}
		}
		ctx, stop := signalContext()
		defer stop()
		l, closeLedger, err := openLedger(ctx, redisURL, nil)
		if err != nil {
			return err
		}
		defer closeLedger()
		caps, err := l.StoredCaps(ctx, principal)
		if err != nil {
			return ledgerError(err)
		}
		if asJSON {
			if caps == nil {
				caps = []spend.StoredCap{}
			}
			return writeJSON(cmd.OutOrStdout(), caps)
		}
		if len(caps) == 0 {
			fmt.Fprintln(cmd.OutOrStdout(), "no stored caps: every principal has the server's --cap (default 100.00 USD per provider)")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PRINCIPAL\tPROVIDER\tMONTH\tCAP")
		for _, c := range caps {
			mon := c.Month
			if mon == "" {
				mon = "every month"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(c.Principal), c.Provider, mon, c.Cap)
		}
		return tw.Flush()
	}
	return cmd
}
