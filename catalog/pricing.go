package catalog

import (
	"encoding/json"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// Interval is how often a price is charged.
type Interval string

// Billing intervals. Domain registrations are priced per year of the term.
const (
	Once  Interval = "once"
	Month Interval = "month"
	Year  Interval = "year"
)

// Valid reports whether i is one of the known intervals.
func (i Interval) Valid() bool {
	switch i {
	case Once, Month, Year:
		return true
	}
	return false
}

// Pricing is a list price: an amount in integer minor units of a currency,
// charged once or per interval. Free things have Minor 0.
//
// Display mirrors the wire form for readers of the struct; MarshalJSON always
// derives it from Minor and Currency, so a hand-built Pricing cannot
// advertise one amount and charge another.
type Pricing struct {
	Minor    int64    `json:"amount_minor" jsonschema_description:"amount in integer minor units of currency (cents for usd); 0 means free"`
	Currency string   `json:"currency" jsonschema_description:"lowercase ISO 4217 currency code"`
	Display  string   `json:"display" jsonschema_description:"the amount for people, e.g. 11.17 USD"`
	Interval Interval `json:"interval" jsonschema_description:"once, month or year: how often the amount is charged"`
}

// NewPricing returns the pricing of amount m charged per interval.
func NewPricing(m money.Money, interval Interval) Pricing {
	return Pricing{Minor: m.Minor, Currency: m.Currency, Display: m.String(), Interval: interval}
}

// Price returns the amount charged per interval.
func (p Pricing) Price() money.Money { return money.Money{Minor: p.Minor, Currency: p.Currency} }

// Free reports whether the price is zero.
func (p Pricing) Free() bool { return p.Minor == 0 }

// MarshalJSON renders the wire form
// {"amount_minor":1117,"currency":"usd","display":"11.17 USD","interval":"year"}.
func (p Pricing) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Minor    int64    `json:"amount_minor"`
		Currency string   `json:"currency"`
		Display  string   `json:"display"`
		Interval Interval `json:"interval"`
	}{p.Minor, p.Currency, p.Price().String(), p.Interval})
}
