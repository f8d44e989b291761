package stripe

import (
	"context"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Invoice is a paid invoice, as reconcile compares it with the ledger.
type Invoice struct {
	ID           string
	Customer     string
	Subscription string
	Amount       money.Money // amount_paid
	PeriodStart  time.Time   // of its first line (Stripe's invoice.period_start is the period before a renewal)
	Principal    string      // the subscription's tollgate_principal metadata, if any
}

// maxReconcile bounds what one listing reads.
const maxReconcile = 10000

// PaidCustomers lists the customers tollgate created (their
// tollgate_principal metadata) as customer id → principal.
func (c *Client) PaidCustomers(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	lp := &stripego.CustomerListParams{}
	lp.Limit = stripego.Int64(100)
	o := op{name: "customer_list", what: "listing the Stripe customers"}
	_, err := c.call(ctx, o, func(ctx context.Context) { lp.Context = ctx }, func() error {
		it := c.api.Customers.List(lp)
		for n := 0; n < maxReconcile && it.Next(); n++ {
			cu := it.Customer()
			if p := cu.Metadata[MetadataPrincipal]; p != "" {
				out[cu.ID] = p
			}
		}
		return it.Err()
	})
	return out, err
}

// PaidInvoices lists the paid invoices of customerID, newest first.
func (c *Client) PaidInvoices(ctx context.Context, customerID string) ([]Invoice, error) {
	if err := checkID("customerID", customerID, "cus_"); err != nil {
		return nil, err
	}
	lp := &stripego.InvoiceListParams{Customer: stripego.String(customerID), Status: stripego.String("paid")}
	lp.Limit = stripego.Int64(100)
	var out []Invoice
	o := op{name: "invoice_list", what: "listing the invoices of " + customerID}
	_, err := c.call(ctx, o, func(ctx context.Context) { lp.Context = ctx }, func() error {
		it := c.api.Invoices.List(lp)
		for n := 0; n < maxReconcile && it.Next(); n++ {
			in := it.Invoice()
			v := Invoice{ID: in.ID, Customer: customerID, Amount: money.Money{Minor: in.AmountPaid, Currency: strings.ToLower(string(in.Currency))},
				PeriodStart: time.Unix(in.PeriodStart, 0).UTC()}
			if in.Subscription != nil {
				v.Subscription = in.Subscription.ID
			}
			if in.SubscriptionDetails != nil {
				v.Principal = in.SubscriptionDetails.Metadata[MetadataPrincipal]
			}
			if in.Lines != nil && len(in.Lines.Data) > 0 && in.Lines.Data[0] != nil && in.Lines.Data[0].Period != nil {
				v.PeriodStart = time.Unix(in.Lines.Data[0].Period.Start, 0).UTC()
			}
			out = append(out, v)
		}
		return it.Err()
	})
	return out, err
}
