package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/links"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/tools/stripe"
)

// Mismatch is one difference between the ledger and the provider.
type Mismatch struct {
	Kind      string       `json:"kind"` // charged_without_commit, committed_without_charge, amount_differs
	Principal string       `json:"principal"`
	Key       string       `json:"key"` // Stripe: the invoice id; Cloudflare: <account id>/<domain>
	Ref       string       `json:"ref,omitempty"`
	Ledger    *money.Money `json:"ledger,omitempty"`
	Provider  *money.Money `json:"provider,omitempty"`
}

// providerCharge is one charge the provider reports for a month.
type providerCharge struct {
	Principal, Key, Ref string
	Amount              money.Money
}

// compareMonth lists the mismatches of one month between what the ledger
// committed (ledger: that month's charges by principal) and what the
// provider charged (provider: that month's charges), matching by key (a
// Stripe invoice id, a Cloudflare account/domain). An invoice may sit in a neighbouring month on the other side (a
// hold counts in the month it was placed, an invoice in its period's; on
// a test clock they differ): nearLedger and nearProvider are every charge
// of the months around, and a match there is not a mismatch.
func compareMonth(ledger, nearLedger map[string][]spend.Charge, provider, nearProvider []providerCharge) []Mismatch {
	var out []Mismatch
	type lc struct {
		c     spend.Charge
		owner string
	}
	ledgerAt := map[string]lc{}
	for p, cs := range nearLedger {
		for _, c := range cs {
			ledgerAt[c.Key] = lc{c, p}
		}
	}
	for p, cs := range ledger {
		for _, c := range cs {
			ledgerAt[c.Key] = lc{c, p}
		}
	}
	provAt := map[string]providerCharge{}
	for _, pc := range nearProvider {
		provAt[pc.Key] = pc
	}
	for _, pc := range provider {
		provAt[pc.Key] = pc
	}
	reported := map[string]bool{}
	differs := func(l lc, pc providerCharge) {
		if reported[pc.Key] || (l.c.Amount == pc.Amount && l.owner == pc.Principal) {
			return
		}
		reported[pc.Key] = true
		la, pa := l.c.Amount, pc.Amount
		out = append(out, Mismatch{Kind: "amount_differs", Principal: pc.Principal, Key: pc.Key, Ref: pc.Ref, Ledger: &la, Provider: &pa})
	}
	for _, pc := range provider {
		l, ok := ledgerAt[pc.Key]
		if !ok {
			pa := pc.Amount
			out = append(out, Mismatch{Kind: "charged_without_commit", Principal: pc.Principal, Key: pc.Key, Ref: pc.Ref, Provider: &pa})
			continue
		}
		differs(l, pc)
	}
	for p, cs := range ledger {
		for _, c := range cs {
			pc, ok := provAt[c.Key]
			if !ok {
				la := c.Amount
				out = append(out, Mismatch{Kind: "committed_without_charge", Principal: p, Key: c.Key, Ref: c.Ref, Ledger: &la})
				continue
			}
			differs(lc{c, p}, pc)
		}
	}
	slices.SortFunc(out, func(a, b Mismatch) int {
		if c := strings.Compare(a.Principal, b.Principal); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// stripeForReconcile is the Stripe API reconcile reads: production's
// (the key in the environment, --stripe-api-url), else the running
// sandbox's fake at issuer.
func stripeForReconcile(ctx context.Context, apiURL, issuer string) (*stripe.Client, error) {
	if key := os.Getenv(stripe.SecretKeyEnv); key != "" {
		return stripe.NewClient(stripe.Config{SecretKey: key, BaseURL: apiURL, Timeout: 30 * time.Second})
	}
	base, err := parseIssuer(issuer)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dev/providers", nil)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("no %s in the environment and no sandbox at %s (%v): set %s (and --stripe-api-url) for production", stripe.SecretKeyEnv, base, err, stripe.SecretKeyEnv)
	}
	defer res.Body.Close()
	var p struct{ Stripe string }
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&p); err != nil || res.StatusCode != http.StatusOK || p.Stripe == "" {
		return nil, fmt.Errorf("the server at %s is not a sandbox with a fake Stripe (HTTP %d); set %s for production", base, res.StatusCode, stripe.SecretKeyEnv)
	}
	return stripe.NewClient(stripe.Config{SecretKey: compose.SandboxStripeKey, BaseURL: p.Stripe, HTTPClient: &http.Client{}, Timeout: 30 * time.Second})
}

// reconcileStripe compares month mon of the ledger with Stripe's paid
// invoices of every customer tollgate created (found by its
// tollgate_principal metadata), not only the subscriptions it recorded.
func reconcileStripe(ctx context.Context, l *spend.Ledger, sc *stripe.Client, mon string) ([]Mismatch, int, error) {
	custs, err := sc.PaidCustomers(ctx)
	if err != nil {
		return nil, 0, err
	}
	var prov, near []providerCharge
	ids := make([]string, 0, len(custs))
	for id := range custs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		invs, err := sc.PaidInvoices(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		for _, in := range invs {
			if in.Amount.Minor == 0 {
				continue
			}
			pc := providerCharge{Principal: custs[id], Key: in.ID, Ref: in.Subscription, Amount: in.Amount}
			if spend.MonthOf(in.PeriodStart) == mon {
				prov = append(prov, pc)
			} else {
				near = append(near, pc)
			}
		}
	}
	principals, err := l.Principals(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, p := range custs {
		if !slices.Contains(principals, p) {
			principals = append(principals, p)
		}
	}
	ledger, nearLedger := map[string][]spend.Charge{}, map[string][]spend.Charge{}
	first, _ := time.Parse("2006-01", mon)
	for _, p := range principals {
		for d := -12; d <= 12; d++ {
			m := first.AddDate(0, d, 0).Format("2006-01")
			cs, err := l.Charges(ctx, p, spend.Stripe, m)
			if err != nil {
				return nil, 0, err
			}
			if d == 0 {
				ledger[p] = cs
			} else {
				nearLedger[p] = append(nearLedger[p], cs...)
			}
		}
	}
	return compareMonth(ledger, nearLedger, prov, near), len(prov), nil
}

// cloudflareCharge is one registration the sandbox's fake Cloudflare
// billed, as GET /dev/cloudflare/charges lists it.
type cloudflareCharge struct {
	Domain         string      `json:"domain"`
	Account        string      `json:"account_id"`
	RegistrationID string      `json:"registration_id"`
	Price          money.Money `json:"price"`
	Month          string      `json:"month"`
}

// msgCloudflareSandboxOnly is why reconcile --provider cloudflare needs
// a sandbox.
const msgCloudflareSandboxOnly = "reconcile --provider cloudflare works against a sandbox only: Cloudflare has no API that lists an account's registrar charges. " +
	"For production compare the ledger (tollgate spend show, tollgate audit export) with Cloudflare's billing export by hand. Nothing was changed"

// cloudflareCharges reads what the running sandbox's fake Cloudflare
// billed (GET /dev/cloudflare/charges at issuer). A server without that
// route (production, or a replica using another's fakes) is bad usage.
func cloudflareCharges(ctx context.Context, issuer string) ([]cloudflareCharge, error) {
	base, err := parseIssuer(issuer)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dev/cloudflare/charges", nil)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("no tollgate server at %s (%v); %s", base, err, msgCloudflareSandboxOnly)
	}
	defer res.Body.Close()
	var body struct {
		Charges *[]cloudflareCharge `json:"charges"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&body) != nil || body.Charges == nil {
		return nil, usage("the server at %s is not a sandbox running its own fake Cloudflare (GET /dev/cloudflare/charges: HTTP %d); %s",
			base, res.StatusCode, msgCloudflareSandboxOnly)
	}
	for _, c := range *body.Charges {
		if _, err := spend.ParseMonth(c.Month); err != nil || c.Account == "" || c.Domain == "" {
			return nil, fmt.Errorf("the sandbox at %s listed a charge without its account, domain or month (%+v); is it an older tollgate? Nothing was changed", base, c)
		}
	}
	return *body.Charges, nil
}

// reconcileCloudflare compares month mon of the ledger with the
// registrations the sandbox's fake Cloudflare billed, by
// <account id>/<domain>. Each account is the principal's that linked it
// (an account no principal links now shows with no principal).
func reconcileCloudflare(ctx context.Context, l *spend.Ledger, rdb redis.UniversalClient, charges []cloudflareCharge, mon string) ([]Mismatch, int, error) {
	principals, err := l.Principals(ctx)
	if err != nil {
		return nil, 0, err
	}
	owner, err := links.CloudflareAccounts(ctx, rdb, principals)
	if err != nil {
		return nil, 0, err
	}
	first, _ := time.Parse("2006-01", mon)
	ledger, nearLedger := map[string][]spend.Charge{}, map[string][]spend.Charge{}
	// noted is who the ledger noted each registration for: the principal
	// whose linked account it was when the commit was recorded. A charge
	// is that principal's even when the account was linked again since.
	noted := map[string]string{}
	for _, p := range principals {
		// A hold counts in the month it was placed, the registration in
		// the month Cloudflare charged: across a month's end they differ by
		// one.
		for d := -1; d <= 1; d++ {
			cs, err := l.Charges(ctx, p, spend.Cloudflare, first.AddDate(0, d, 0).Format("2006-01"))
			if err != nil {
				return nil, 0, err
			}
			for _, c := range cs {
				noted[c.Key] = p
			}
			if d == 0 {
				ledger[p] = cs
			} else {
				nearLedger[p] = append(nearLedger[p], cs...)
			}
		}
	}
	var prov, near []providerCharge
	for _, c := range charges {
		key := c.Account + "/" + c.Domain
		who, ok := noted[key]
		if !ok {
			who = owner[c.Account] // not in the ledger: whoever links the account now
		}
		pc := providerCharge{Principal: who, Key: key, Ref: c.RegistrationID, Amount: c.Price}
		cm, _ := time.Parse("2006-01", c.Month)
		switch d := (cm.Year()-first.Year())*12 + int(cm.Month()-first.Month()); {
		case d == 0:
			prov = append(prov, pc)
		case d >= -1 && d <= 1:
			near = append(near, pc)
		}
	}
	return compareMonth(ledger, nearLedger, prov, near), len(prov), nil
}

func printMismatches(w io.Writer, provider, mon string, ms []Mismatch, compared int, asJSON bool) error {
	if asJSON {
		if ms == nil {
			ms = []Mismatch{}
		}
		return json.NewEncoder(w).Encode(map[string]any{"provider": provider, "month": mon, "provider_charges": compared, "mismatches": ms})
	}
	if len(ms) == 0 {
		_, err := fmt.Fprintf(w, "%s %s: %d provider charge(s), all committed in the ledger with the same amount; no mismatch\n", provider, mon, compared)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tPRINCIPAL\tKEY\tREF\tLEDGER\tPROVIDER")
	show := func(m *money.Money) string {
		if m == nil {
			return "-"
		}
		return m.String()
	}
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Kind, dash(m.Principal), m.Key, dash(m.Ref), show(m.Ledger), show(m.Provider))
	}
	return tw.Flush()
}

// errMismatch makes reconcile exit 1 after printing the mismatches.
type errMismatch struct{ n int }

func (e errMismatch) Error() string {
	return fmt.Sprintf("%d mismatch(es) between the ledger and the provider; check each with the provider (nothing was changed)", e.n)
}

func reconcileMonth(cmd *cobra.Command, redisURL, provider, mon, issuer, stripeAPI string, asJSON bool) error {
	switch provider {
	case spend.Stripe, spend.Cloudflare:
	default:
		return usage("--provider must be stripe or cloudflare")
	}
	if mon == "" {
		mon = spend.MonthOf(time.Now())
	} else if _, err := spend.ParseMonth(mon); err != nil {
		return usage("--month %q is not a UTC month; write it as YYYY-MM, e.g. 2026-12", mon)
	}
	ctx, stop := signalContext()
	defer stop()
	rdb, closeFn, err := dialDeployment(ctx, redisURL)
	if err != nil {
		return err
	}
	defer closeFn()
	l, err := spend.New(rdb, spend.Config{})
	if err != nil {
		return err
	}
	var (
		ms []Mismatch
		n  int
	)
	switch provider {
	case spend.Stripe:
		sc, err := stripeForReconcile(ctx, stripeAPI, issuer)
		if err != nil {
			return err
		}
		ms, n, err = reconcileStripe(ctx, l, sc, mon)
		if err != nil {
			return ledgerError(err)
		}
	case spend.Cloudflare:
		charges, err := cloudflareCharges(ctx, issuer)
		if err != nil {
			return err
		}
		ms, n, err = reconcileCloudflare(ctx, l, rdb, charges, mon)
		if err != nil {
			return ledgerError(err)
		}
	}
	if err := printMismatches(cmd.OutOrStdout(), provider, mon, ms, n, asJSON); err != nil {
		return err
	}
	if len(ms) > 0 {
		return errMismatch{len(ms)}
	}
	return nil
}
