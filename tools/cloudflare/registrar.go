package cloudflare

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// maxYears is the longest term any registry sells.
const maxYears = 10

// Availability is the Registrar's authoritative answer for one name.
type Availability struct {
	Name      domainname.Name
	Available bool
	// Reason says why a name is not available, as Cloudflare put it:
	// domain_unavailable, domain_premium, extension_not_supported, …
	Reason string
	Tier   string // standard or premium
	// Price is the first year; RenewalPrice each further year. Both are
	// zero when the name is not available.
	Price        money.Money
	RenewalPrice money.Money
	// MinYears is the shortest term, from the catalog (the check does not
	// report it); 1 for TLDs the catalog does not list.
	MinYears int
	RayID    string
}

// Cost is what a registration of years years costs: the first year at
// Price, every further year at RenewalPrice (as documented for the API).
func (a Availability) Cost(years int) (money.Money, error) {
	if !a.Available {
		return money.Money{}, fault.Newf(DomainUnavailable, "%s is not available (%s); nothing was charged.", a.Name, a.Reason)
	}
	if years < a.MinYears || years > maxYears {
		return money.Money{}, fault.Newf(fault.InvalidArgument,
			"years must be between %d and %d for %s; nothing was charged.", a.MinYears, maxYears, a.Name)
	}
	if a.RenewalPrice.Currency != a.Price.Currency {
		return money.Money{}, fault.Newf(ProviderError, "Cloudflare priced %s in two currencies; nothing was charged.", a.Name)
	}
	more := int64(years - 1)
	if more > 0 && a.RenewalPrice.Minor > (math.MaxInt64-a.Price.Minor)/more {
		return money.Money{}, fault.Newf(ProviderError, "the price of %s overflows; nothing was charged.", a.Name)
	}
	return money.Money{Minor: a.Price.Minor + more*a.RenewalPrice.Minor, Currency: a.Price.Currency}, nil
}

// State is a registration workflow state, as documented.
type State string

const (
	StatePending        State = "pending"
	StateInProgress     State = "in_progress"
	StateActionRequired State = "action_required"
	StateBlocked        State = "blocked"
	StateSucceeded      State = "succeeded"
	StateFailed         State = "failed"
)

func (s State) known() bool {
	switch s {
	case StatePending, StateInProgress, StateActionRequired, StateBlocked, StateSucceeded, StateFailed:
		return true
	}
	return false
}

// Registration is the answer to a registration request.
type Registration struct {
	// ID is context.registration_id when Cloudflare sends one, else the
	// domain name, which the API documents as the registration's identity.
	ID     string
	Domain domainname.Name
	Status State
	// Completed is true once the workflow is terminal.
	Completed bool
	// Price is the amount Cloudflare states for the term. PriceReported is
	// false when the answer did not state one (the public API does not
	// document it): the caller must then count the amount it quoted and
	// held, never zero.
	Price         money.Money
	PriceReported bool
	RayID         string
}

// Status is the state of a registration workflow.
type Status struct {
	Domain    domainname.Name
	State     State
	Completed bool
	// Action is what the account owner must do when State is
	// action_required, as Cloudflare described it.
	Action string
	RayID  string
}

// Registered reports whether the registration succeeded.
func (s Status) Registered() bool { return s.State == StateSucceeded }

// CheckDomain asks the Registrar whether name can be registered and at what
// price. A name that is taken, premium or on an unsupported extension is
// not an error: Available is false and Reason says why. Premium names count
// as unavailable because the API does not register them.
func (c *Client) CheckDomain(ctx context.Context, name domainname.Name) (Availability, error) {
	o := op{name: "domain_check", verb: "the availability check of", domain: name}
	if err := checkName(name); err != nil {
		return Availability{}, err
	}
	body, _ := json.Marshal(map[string][]string{"domains": {string(name)}})
	raw, ray, err := c.call(ctx, o, http.MethodPost, c.path("domain-check"), body, nil)
	if err != nil {
		return Availability{}, err
	}
	var res struct {
		Domains []struct {
			Name        string `json:"name"`
			Registrable bool   `json:"registrable"`
			Reason      string `json:"reason"`
			Tier        string `json:"tier"`
			Pricing     *struct {
				Currency         string `json:"currency"`
				RegistrationCost string `json:"registration_cost"`
				RenewalCost      string `json:"renewal_cost"`
			} `json:"pricing"`
		} `json:"domains"`
	}
	ce := &CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true}
	if err := json.Unmarshal(raw, &res); err != nil {
		ce.Err = err
		return Availability{}, unreadable(o, ce)
	}
	a := Availability{Name: name, MinYears: c.minYears(name), RayID: ray}
	for _, d := range res.Domains {
		if !strings.EqualFold(d.Name, string(name)) {
			continue
		}
		a.Tier, a.Reason = d.Tier, d.Reason
		switch {
		case !d.Registrable:
			if a.Reason == "" {
				a.Reason = "domain_unavailable"
			}
			return a, nil
		case d.Tier == "premium":
			// The API does not register premium names (documented).
			a.Reason = "domain_premium"
			return a, nil
		case d.Pricing == nil:
			ce.Err = fmt.Errorf("registrable without pricing")
			return Availability{}, fault.Wrap(ce, ProviderError, fmt.Sprintf(
				"Cloudflare reported %s as available but gave no price; nothing was charged. Retry later.", name))
		}
		if a.Price, err = parsePrice(d.Pricing.RegistrationCost, d.Pricing.Currency); err == nil {
			a.RenewalPrice, err = parsePrice(d.Pricing.RenewalCost, d.Pricing.Currency)
		}
		if err != nil {
			ce.Err = err
			return Availability{}, fault.Wrap(ce, ProviderError, fmt.Sprintf(
				"Cloudflare's price for %s could not be read exactly (%q %q); nothing was charged.",
				name, sanitize(d.Pricing.RegistrationCost), sanitize(d.Pricing.Currency)))
		}
		a.Available = true
		return a, nil
	}
	// Documented: names Cloudflare considers malformed are omitted.
	ce.Err = fmt.Errorf("no result for %s", name)
	return Availability{}, fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
		"Cloudflare returned no result for %s (it omits names it considers malformed); nothing was charged.", name))
}

// parsePrice reads a documented decimal string ("11.17") into integer minor
// units. A price with more decimals than the currency has, an exponent, a
// sign, an unsupported currency or zero is refused: a zero or rounded price
// would let a registration slip past the spend cap.
func parsePrice(amount, currency string) (money.Money, error) {
	m, err := money.Parse(amount, currency)
	if err != nil {
		return money.Money{}, err
	}
	if m.Minor <= 0 {
		return money.Money{}, fmt.Errorf("price %q is not positive", amount)
	}
	return m, nil
}

// Register asks the Registrar to register name for years years, without
// auto-renewal and with WHOIS redaction. It sends "Prefer: respond-async"
// so the answer comes at once and the caller polls RegistrationStatus.
// The POST is sent at most once.
//
// A paused registration returns the Registration together with an
// action_required error; a failed one with provider_refused. A 409 is
// domain_unavailable.
func (c *Client) Register(ctx context.Context, name domainname.Name, years int) (Registration, error) {
	o := op{name: "registration", verb: "the registration of", domain: name, charges: true}
	if err := checkName(name); err != nil {
		return Registration{}, err
	}
	if years < 1 || years > maxYears {
		return Registration{}, fault.Newf(fault.InvalidArgument,
			"years must be between 1 and %d; nothing was sent or charged.", maxYears)
	}
	body, _ := json.Marshal(struct {
		DomainName  string `json:"domain_name"`
		Years       int    `json:"years"`
		AutoRenew   bool   `json:"auto_renew"`
		PrivacyMode string `json:"privacy_mode"`
	}{string(name), years, false, "redaction"})
	hdr := http.Header{"Prefer": {"respond-async"}}
	raw, ray, err := c.call(ctx, o, http.MethodPost, c.path("registrations"), body, hdr)
	if err != nil {
		return Registration{}, err
	}
	wf, err := decodeWorkflow(o, raw, ray)
	if err != nil {
		return Registration{}, err
	}
	reg := Registration{ID: string(name), Domain: name, Status: wf.State, Completed: wf.Completed, RayID: ray}
	if id := wf.contextString("registration_id"); id != "" {
		reg.ID = id
	}
	var p struct{ Amount, Currency string }
	if json.Unmarshal(wf.Context["price"], &p) == nil && p.Amount != "" {
		if m, err := parsePrice(p.Amount, p.Currency); err == nil {
			reg.Price, reg.PriceReported = m, true
		}
	}
	return reg, wf.err(o, ray)
}

// RegistrationStatus polls the registration workflow of name. It returns
// the Status together with an action_required error when the workflow is
// paused for the account owner (a polling loop must stop there: it does
// not resolve on its own), and with provider_refused when it failed.
func (c *Client) RegistrationStatus(ctx context.Context, name domainname.Name) (Status, error) {
	o := op{name: "registration_status", verb: "the registration status of", domain: name}
	if err := checkName(name); err != nil {
		return Status{}, err
	}
	raw, ray, err := c.call(ctx, o, http.MethodGet,
		c.path("registrations/"+url.PathEscape(string(name))+"/registration-status"), nil, nil)
	if err != nil {
		return Status{}, err
	}
	wf, err := decodeWorkflow(o, raw, ray)
	if err != nil {
		return Status{}, err
	}
	st := Status{Domain: name, State: wf.State, Completed: wf.Completed, Action: wf.contextString("action"), RayID: ray}
	return st, wf.err(o, ray)
}

// workflow is the documented workflow status object.
type workflow struct {
	Completed bool                       `json:"completed"`
	State     State                      `json:"state"`
	Context   map[string]json.RawMessage `json:"context"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeWorkflow(o op, raw json.RawMessage, ray string) (workflow, error) {
	var wf workflow
	err := json.Unmarshal(raw, &wf)
	if err == nil && !wf.State.known() {
		err = fmt.Errorf("unknown workflow state %q", wf.State)
	}
	if err != nil {
		return workflow{}, unreadable(o, &CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true, Err: err})
	}
	return wf, nil
}

func (wf workflow) contextString(key string) string {
	var s string
	if json.Unmarshal(wf.Context[key], &s) != nil {
		return ""
	}
	return sanitize(s)
}

// err turns the states a caller must not treat as progress into errors.
func (wf workflow) err(o op, ray string) error {
	ce := &CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true}
	switch wf.State {
	case StateActionRequired:
		action := wf.contextString("action")
		if action == "" {
			action = "see the Cloudflare dashboard"
		}
		return fault.Wrap(ce, ActionRequired, fmt.Sprintf(
			"Cloudflare paused the registration of %s until the account owner acts (%s) in the dashboard under Domains > Registrations. "+
				"Nothing has been charged yet; Cloudflare charges when the registration completes.", o.domain, action))
	case StateFailed:
		msg := "no reason given"
		if wf.Error != nil {
			msg = sanitize(wf.Error.Message) + " (" + sanitize(wf.Error.Code) + ")"
		}
		ce.ProviderMessages = []string{msg}
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare reports the registration of %s failed: %s; nothing was charged.", o.domain, msg))
	}
	return nil
}

func (c *Client) path(rest string) string {
	return "/accounts/" + c.account + "/registrar/" + rest
}

func (c *Client) minYears(name domainname.Name) int {
	if s, ok := c.catalog.DomainPrice(name.TLD()); ok && s.MinYears > 0 {
		return s.MinYears
	}
	return 1
}

// checkName refuses a Name that did not come from domainname.Parse: a
// string converted to Name would otherwise reach a URL path unvalidated.
func checkName(name domainname.Name) error {
	n, err := domainname.ParseExact(string(name))
	if err != nil || n != name {
		return fault.Newf(domainname.InvalidDomain,
			"%+q is not a canonical domain name; nothing was sent or charged.", string(name))
	}
	return nil
}
