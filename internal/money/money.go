// Package money is tollgate's one representation of an amount: integer minor
// units plus an ISO 4217 currency. There are no floats anywhere; parsing
// accepts decimal strings like "20.00" and refuses anything ambiguous.
package money

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money is an amount in minor units (cents for USD) and a lowercase currency.
type Money struct {
	Minor    int64  `json:"amount_minor"`
	Currency string `json:"currency"`
}

// USD returns an amount of US cents.
func USD(cents int64) Money { return Money{Minor: cents, Currency: "usd"} }

// exponent is the number of minor-unit digits per supported currency.
var exponent = map[string]int{"usd": 2, "eur": 2, "gbp": 2}

// Exponent reports the minor-unit digits of currency and whether it is supported.
func Exponent(currency string) (int, bool) {
	e, ok := exponent[strings.ToLower(currency)]
	return e, ok
}

// Parse reads a decimal amount such as "20.00" or "20" in currency. It
// refuses negative amounts, more fractional digits than the currency has,
// exponents, signs, spaces and amounts that overflow int64 minor units.
func Parse(amount, currency string) (Money, error) {
	cur := strings.ToLower(currency)
	exp, ok := exponent[cur]
	if !ok {
		return Money{}, fmt.Errorf("money: unsupported currency %q (use usd, eur or gbp)", currency)
	}
	if amount == "" {
		return Money{}, fmt.Errorf("money: empty amount")
	}
	whole, frac, hasDot := strings.Cut(amount, ".")
	if whole == "" || !digits(whole) || (hasDot && (frac == "" || !digits(frac))) {
		return Money{}, fmt.Errorf("money: %q is not a plain decimal amount like \"20.00\"", amount)
	}
	if len(frac) > exp {
		return Money{}, fmt.Errorf("money: %q has more than %d decimal places for %s", amount, exp, cur)
	}
	frac += strings.Repeat("0", exp-len(frac))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return Money{}, fmt.Errorf("money: %q is too large", amount)
	}
	scale := int64(math.Pow10(exp))
	if w > math.MaxInt64/scale {
		return Money{}, fmt.Errorf("money: %q is too large", amount)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	if w*scale > math.MaxInt64-f {
		return Money{}, fmt.Errorf("money: %q is too large", amount)
	}
	return Money{Minor: w*scale + f, Currency: cur}, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Decimal renders the amount as a decimal string, e.g. "10.44".
func (m Money) Decimal() string {
	exp := exponent[m.Currency]
	if exp == 0 {
		return strconv.FormatInt(m.Minor, 10)
	}
	sign := ""
	v := m.Minor
	if v < 0 {
		sign, v = "-", -v
	}
	scale := int64(math.Pow10(exp))
	return fmt.Sprintf("%s%d.%0*d", sign, v/scale, exp, v%scale)
}

// String renders "10.44 USD".
func (m Money) String() string { return m.Decimal() + " " + strings.ToUpper(m.Currency) }

// MarshalJSON renders {"amount_minor":1044,"currency":"usd","display":"10.44 USD"}.
func (m Money) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Minor    int64  `json:"amount_minor"`
		Currency string `json:"currency"`
		Display  string `json:"display"`
	}{m.Minor, m.Currency, m.String()})
}

// UnmarshalJSON accepts the object form; amount_minor must be a JSON
// integer (not a string, a fraction or an exponent).
func (m *Money) UnmarshalJSON(b []byte) error {
	var raw struct {
		Minor    json.RawMessage `json:"amount_minor"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("money: %w", err)
	}
	v, err := strconv.ParseInt(string(raw.Minor), 10, 64)
	if err != nil {
		return fmt.Errorf("money: amount_minor %s is not an integer number of minor units", raw.Minor)
	}
	if _, ok := exponent[strings.ToLower(raw.Currency)]; !ok {
		return fmt.Errorf("money: unsupported currency %q", raw.Currency)
	}
	m.Minor, m.Currency = v, strings.ToLower(raw.Currency)
	return nil
}

// Amount is Money as tool results show it. Result types use it (rather
// than Money) so that their generated output schemas describe every field
// sent, display included.
type Amount struct {
	Minor    int64  `json:"amount_minor" jsonschema:"integer minor units (cents)"`
	Currency string `json:"currency"`
	Display  string `json:"display" jsonschema:"human-readable, e.g. 10.44 USD"`
}

// Amount returns m's wire form.
func (m Money) Amount() Amount {
	return Amount{Minor: m.Minor, Currency: m.Currency, Display: m.String()}
}

// AmountPtr is Amount of a pointer, nil for nil.
func AmountPtr(m *Money) *Amount {
	if m == nil {
		return nil
	}
	a := m.Amount()
	return &a
}
