package stripe

import (
	"context"
	"strings"

	stripego "github.com/stripe/stripe-go/v79"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Customer is the Stripe customer that pays for a principal.
type Customer struct {
	ID        string // cus_…
	Email     string
	Created   bool   // this call created it
	RequestID string // Stripe's Request-Id of the answer that found or created it
}

// maxPage is the largest page Stripe lists; one page is all the adapter reads.
const maxPage = 100

// FindOrCreateCustomer returns the principal's Stripe customer: the oldest
// customer with this email whose metadata tollgate_principal is principal,
// or a new one with both. A customer with the same email but another (or
// no) principal is never adopted: its cards are not this principal's to
// spend. The create is a POST with idemKey, so a retry, or a concurrent
// first use with the same key, yields the same customer; derive the key
// from the principal alone.
//
// The lookup uses the list filter (exact and case-sensitive, and
// consistent at once) rather than search, whose index lags by up to a
// minute and would let a quick second call create a duplicate.
func (c *Client) FindOrCreateCustomer(ctx context.Context, email, principal, idemKey string) (Customer, error) {
	if err := checkText("email", email, 512); err != nil {
		return Customer{}, err
	}
	if !strings.Contains(email, "@") {
		return Customer{}, fault.New(fault.InvalidArgument, "stripe: email must be an email address")
	}
	// Stripe caps metadata values at 500 characters.
	if err := checkText("principal", principal, 500); err != nil {
		return Customer{}, err
	}
	if err := checkIdemKey(idemKey); err != nil {
		return Customer{}, err
	}

	lp := &stripego.CustomerListParams{Email: stripego.String(email)}
	lp.Limit = stripego.Int64(maxPage)
	var found *stripego.Customer
	find := op{name: "customer_search", what: "the Stripe customer lookup"}
	s, err := c.call(ctx, find, func(ctx context.Context) { lp.Context = ctx }, func() error {
		it := c.api.Customers.List(lp)
		// n < maxPage before Next: one page, never a second request.
		for n := 0; n < maxPage && it.Next(); n++ {
			cu := it.Customer()
			if cu.Deleted || cu.Metadata[MetadataPrincipal] != principal || cu.Email != email {
				continue
			}
			if found == nil || cu.Created < found.Created {
				found = cu
			}
		}
		return it.Err()
	})
	if err != nil {
		return Customer{}, err
	}
	if found != nil {
		if err := checkID("the customer id", found.ID, "cus_"); err != nil {
			return Customer{}, unexpected(find, s, "a customer id that is not cus_…")
		}
		return Customer{ID: found.ID, Email: found.Email, RequestID: s.RequestID}, nil
	}

	p := &stripego.CustomerParams{Email: stripego.String(email)}
	p.AddMetadata(MetadataPrincipal, principal)
	if c.testClock != "" {
		p.TestClock = stripego.String(c.testClock)
	}
	p.SetIdempotencyKey(idemKey)
	create := op{name: "customer_create", what: "creating the Stripe customer", creates: true}
	var cu *stripego.Customer
	s, err = c.call(ctx, create, func(ctx context.Context) { p.Context = ctx }, func() (err error) {
		cu, err = c.api.Customers.New(p)
		return err
	})
	if err != nil {
		return Customer{}, err
	}
	if cu == nil || checkID("the customer id", cu.ID, "cus_") != nil {
		return Customer{}, unexpected(create, s, "no customer id")
	}
	return Customer{ID: cu.ID, Email: cu.Email, Created: true, RequestID: s.RequestID}, nil
}

// PaymentMethods lists the ids of the customer's saved cards (tokens only:
// no card data leaves Stripe), newest first, at most 100.
func (c *Client) PaymentMethods(ctx context.Context, customerID string) ([]string, error) {
	if err := checkID("customerID", customerID, "cus_"); err != nil {
		return nil, err
	}
	lp := &stripego.PaymentMethodListParams{Customer: stripego.String(customerID), Type: stripego.String(string(stripego.PaymentMethodTypeCard))}
	lp.Limit = stripego.Int64(maxPage)
	var ids []string
	o := op{name: "payment_method_list", what: "listing the customer's payment methods"}
	s, err := c.call(ctx, o, func(ctx context.Context) { lp.Context = ctx }, func() error {
		it := c.api.PaymentMethods.List(lp)
		for n := 0; n < maxPage && it.Next(); n++ {
			ids = append(ids, it.PaymentMethod().ID)
		}
		return it.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if checkID("a payment method id", id, "pm_") != nil {
			return nil, unexpected(o, s, "a payment method id that is not pm_…")
		}
	}
	return ids, nil
}

// checkText refuses empty, oversized or non-printable text.
func checkText(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fault.Newf(fault.InvalidArgument, "stripe: %s must be 1 to %d characters", what, max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return fault.Newf(fault.InvalidArgument, "stripe: %s has control characters", what)
		}
	}
	return nil
}
