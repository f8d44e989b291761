package human

import "strings"

// Kind is what a human gate asks for (SPEC §8).
type Kind string

// The gate kinds. URL-mode kinds send the human to a page (sign-in, a
// provider's billing page); form-mode kinds ask a yes/no question with the
// facts shown in the form. Form mode never asks for a secret, a password or
// card data.
const (
	// Authentication: the human signs in at the provider (URL mode).
	Authentication Kind = "authentication"
	// Terms: the human accepts a provider's terms of service, shown by URL
	// and version, with an explicit yes (form mode).
	Terms Kind = "terms"
	// Billing: the human sets up a payment method on the provider's own
	// page; the agent never sees card data (URL mode).
	Billing Kind = "billing"
	// Production: the human approves a change to production, shown as what
	// will change (form mode).
	Production Kind = "production"
	// Purchase: the human approves a purchase, shown as item, exact price,
	// provider and month-to-date spend (form mode).
	Purchase Kind = "purchase"
	// CapRaise: the human raises a monthly spend cap (form mode).
	CapRaise Kind = "cap_raise"
)

// Kinds returns every gate kind, in a fixed order.
func Kinds() []Kind {
	return []Kind{Authentication, Terms, Billing, Production, Purchase, CapRaise}
}

// Valid reports whether k is one of the gate kinds.
func (k Kind) Valid() bool {
	switch k {
	case Authentication, Terms, Billing, Production, Purchase, CapRaise:
		return true
	}
	return false
}

// URLMode reports whether the gate is answered on a page the URL leads to
// (authentication, billing) rather than in an elicitation form. The URL
// carries only an opaque id, never a secret or a pre-authorised credential.
func (k Kind) URLMode() bool { return k == Authentication || k == Billing }

// Rememberable reports whether a yes to this kind may be remembered (see
// Consents): terms acceptance and billing setup are asked once per
// principal and provider (and terms version). Approvals of production
// changes, purchases and cap raises are never remembered.
func (k Kind) Rememberable() bool { return k == Terms || k == Billing }

// ParseKind returns the Kind named s, or false.
func ParseKind(s string) (Kind, bool) {
	k := Kind(strings.TrimSpace(s))
	return k, k.Valid()
}

// Binding is what a gate's answer is bound to: the principal the human
// answers for, the task session and tool that asked, and the digest of the
// tool's canonical arguments (idempotency.Digest). An answer given for one
// binding is never valid for another: another principal, session, tool or
// changed arguments must ask again.
type Binding struct {
	Principal  string `json:"p"`
	Session    string `json:"s"`
	Tool       string `json:"t"`
	ArgsDigest string `json:"a"`
}

// validate checks every field; all four are required.
func (b Binding) validate() error {
	switch {
	case !validPrincipal(b.Principal):
		return invalid("the gate's principal is missing or not printable text of at most %d bytes; nothing was charged or changed.", maxPrincipal)
	case !validID(b.Session):
		return invalid("the gate's session id must match [A-Za-z0-9._~-]{1,%d}; nothing was charged or changed.", maxID)
	case !validToken(b.Tool, maxTool):
		return invalid("the gate's tool name must be 1-%d printable characters without spaces; nothing was charged or changed.", maxTool)
	case !validToken(b.ArgsDigest, maxDigest):
		return invalid("the gate's arguments digest must be 1-%d printable characters without spaces; nothing was charged or changed.", maxDigest)
	}
	return nil
}

// Gate is one question a sealed state records: the elicitation id it was
// asked under, its kind and exactly the summary the human was shown.
type Gate struct {
	ID      string `json:"id"`
	Kind    Kind   `json:"kind"`
	Summary string `json:"summary"`
}

func (g Gate) validate() error {
	switch {
	case !validID(g.ID) || len(g.ID) > maxGateID:
		return invalid("a gate's elicitation id must match [A-Za-z0-9._~-]{1,%d}; nothing was charged or changed.", maxGateID)
	case !g.Kind.Valid():
		return invalid("unknown gate kind %q; nothing was charged or changed.", g.Kind)
	case g.Summary == "" || !optionalText(g.Summary, maxSummary):
		return invalid("a gate's summary must be printable text of 1-%d bytes; nothing was charged or changed.", maxSummary)
	}
	return nil
}
