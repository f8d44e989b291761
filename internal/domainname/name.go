package domainname

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Codes this package decides.
const (
	InvalidDomain   fault.Code = "invalid_domain"
	LookalikeDomain fault.Code = "lookalike_domain"
)

// Limits of RFC 1035 §2.3.4, measured on the A-label form without a
// trailing dot.
const (
	MaxLength      = 253
	MaxLabelLength = 63
	// maxInput bounds the raw input looked at at all, so that a hostile
	// megabyte never reaches normalisation.
	maxInput = 1024
)

// Name is a canonical domain name: lowercase A-labels joined by dots, at
// least two labels, no trailing dot. Only Parse and ParseExact make one; a
// Name converted from an arbitrary string is not validated.
type Name string

func (n Name) String() string { return string(n) }

// TLD returns the last label, e.g. "com" or "xn--p1ai".
func (n Name) TLD() string {
	s := string(n)
	return s[strings.LastIndexByte(s, '.')+1:]
}

// Unicode returns the name with its A-labels decoded to U-labels, e.g.
// "münchen.de" for "xn--mnchen-3ya.de"; for display only.
func (n Name) Unicode() string {
	u, err := idna.Punycode.ToUnicode(string(n))
	if err != nil {
		return string(n)
	}
	return u
}

// lookup maps what a person may type (case) under UTS #46 non-transitional
// processing, so ß and ς stay themselves as IDNA2008 says, and validates
// hyphens, joiners, the Bidi rule (RFC 5893) and STD3 ASCII. Its output must
// then pass idna.Registration (RFC 5891 §4), which maps nothing and refuses
// every code point that is not valid for registration: Parse never
// canonicalises into a name that could not be registered.
var lookup = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
	idna.VerifyDNSLength(true),
)

// Parse reads an untrusted domain name and returns its canonical form. It
// accepts any letter case and one trailing dot ("Shop.Example." gives
// shop.example) and U-labels or A-labels. It refuses empty input, more than
// 253 characters, labels over 63, a single label (no TLD), empty labels,
// leading or trailing hyphens, underscores, whitespace, invisible and
// control characters, shell metacharacters, IP addresses, compatibility
// characters (fullwidth letters and dots, ligatures), mixed scripts within a
// label and labels that are whole-label confusables of ASCII.
func Parse(s string) (Name, error) {
	if s == "" {
		return "", refuse(s, "it is empty", "send a name like shop.example")
	}
	if len(s) > maxInput {
		return "", refuse(s, "it is "+strconv.Itoa(len(s))+" bytes long", "a domain name has at most 253 characters")
	}
	if !utf8.ValidString(s) {
		return "", refuse(s, "it is not valid UTF-8", "send the name as UTF-8 text")
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", refuse(s, "it is an IP address", "tollgate registers and configures domain names, not addresses")
	}
	if err := checkRunes(s); err != nil {
		return "", err
	}
	nfc := norm.NFC.String(s)
	if err := checkCompat(s, nfc); err != nil {
		return "", err
	}
	body := strings.TrimSuffix(nfc, ".")
	labels := strings.Split(body, ".")
	if len(labels) < 2 {
		return "", refuse(s, "it has no top-level domain", "write the full name with its top-level domain, e.g. shop.example")
	}
	for _, l := range labels {
		if err := checkLabelShape(s, l); err != nil {
			return "", err
		}
	}
	mapped, err := lookup.ToUnicode(body)
	if err != nil {
		return "", refuseWrap(err, s, "it is not a valid internationalised domain name (IDNA2008): "+idnaReason(err),
			"check the spelling and send it as letters, digits and hyphens")
	}
	ascii, err := idna.Registration.ToASCII(mapped)
	if err != nil {
		return "", refuseWrap(err, s, "it cannot be registered under IDNA2008 (RFC 5891 §4): "+idnaReason(err),
			"check the spelling and send it as letters, digits and hyphens")
	}
	if len(ascii) > MaxLength {
		return "", refuse(s, "it is "+strconv.Itoa(len(ascii))+" characters long", "a domain name has at most 253")
	}
	for _, l := range strings.Split(ascii, ".") {
		if err := checkLabelShape(s, l); err != nil {
			return "", err
		}
	}
	if err := checkTLD(s, ascii[strings.LastIndexByte(ascii, '.')+1:]); err != nil {
		return "", err
	}
	// Labels that came in as xn-- are only now visible as Unicode: every
	// Unicode rule runs on the decoded form.
	ulabels := strings.Split(mapped, ".")
	for i, l := range ulabels {
		if isASCII(l) {
			continue
		}
		if err := checkRunes(l); err != nil {
			return "", err
		}
		if err := checkCompat(s, l); err != nil {
			return "", err
		}
		if err := checkScripts(s, l); err != nil {
			return "", err
		}
		// UTS #39 §4: a label whose skeleton is pure ASCII is a whole-label
		// confusable of an ASCII name (Cyrillic "раура" for "paypa"). The
		// TLD is exempt: nobody registers one, and ICANN reviews IDN TLDs
		// for confusability (Cyrillic .орг would otherwise fail as "opr").
		if look, ok := asciiLookalike(l); ok && i < len(ulabels)-1 {
			return "", refuse(s, "its label "+strconv.QuoteToASCII(l)+" looks like the ASCII "+strconv.Quote(look),
				"lookalike names are refused; send the ASCII name if that is what you mean")
		}
	}
	return Name(ascii), nil
}

// ParseExact is Parse for matching against names a token allows: the input
// must already be written exactly as the canonical name, each label either
// in its lowercase A-label or its U-label form. A trailing dot, uppercase
// letters, non-NFC text or an A-label in capitals are refused, because
// tollgate:resources must refuse "a differently cased or trailing-dot
// variant" of an allowed name (SPEC §6, issue 4).
func ParseExact(s string) (Name, error) {
	n, err := Parse(s)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(s, ".") {
		return "", refuse(s, "it ends with a dot", "send it without the trailing dot, exactly as "+string(n))
	}
	given := strings.Split(s, ".")
	alabels := strings.Split(string(n), ".")
	ulabels := strings.Split(n.Unicode(), ".")
	if len(given) != len(alabels) || len(ulabels) != len(alabels) {
		return "", refuse(s, "it is not written in canonical form", "send it exactly as "+string(n))
	}
	for i, g := range given {
		if g == alabels[i] || g == ulabels[i] {
			continue
		}
		if hasUpper(g) {
			return "", refuse(s, "it has uppercase letters", "send it in lowercase, exactly as "+string(n))
		}
		return "", refuse(s, "it is not written in canonical form (Unicode normalisation or width differ)",
			"send it exactly as "+string(n))
	}
	return n, nil
}

// checkLabelShape applies the RFC 952/1123 host-name rules that can be
// checked on an ASCII label; Unicode labels are checked again on their
// A-label form after IDNA.
func checkLabelShape(input, l string) error {
	if l == "" {
		return refuse(input, "it has an empty label (a leading dot or two dots in a row)", "separate labels with single dots")
	}
	if !isASCII(l) {
		return nil
	}
	if len(l) > MaxLabelLength {
		return refuse(input, "a label is "+strconv.Itoa(len(l))+" characters long", "a label has at most 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return refuse(input, "its label "+strconv.Quote(l)+" starts or ends with a hyphen", "hyphens may only appear inside a label")
	}
	// RFC 5891 §4.2.3.1: "--" in positions 3 and 4 is reserved for encodings
	// such as xn--.
	if len(l) >= 4 && l[2:4] == "--" && !strings.EqualFold(l[:2], "xn") {
		return refuse(input, "its label "+strconv.Quote(l)+" has \"--\" in positions 3 and 4", "those positions are reserved for encoded labels")
	}
	return nil
}

// checkTLD refuses top-level labels that are not letters or an A-label, so
// that nothing numeric (RFC 3696 §2) or address-like passes as a name.
func checkTLD(input, tld string) error {
	if strings.HasPrefix(tld, "xn--") {
		return nil
	}
	for i := 0; i < len(tld); i++ {
		if tld[i] < 'a' || tld[i] > 'z' {
			return refuse(input, "its top-level domain "+strconv.Quote(tld)+" is not made of letters",
				"use a real top-level domain such as com or dev")
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			return true
		}
	}
	return false
}

// refuse builds the invalid_domain error: what is wrong, then what to do.
func refuse(input, why, todo string) *fault.Error {
	return fault.New(InvalidDomain, "invalid domain name "+quote(input)+": "+why+"; "+todo+".")
}

func refuseWrap(err error, input, why, todo string) *fault.Error {
	e := refuse(input, why, todo)
	e.Cause = err
	return e
}

// quote renders untrusted input for a message: bounded, and with every
// non-ASCII or invisible rune escaped so that a lookalike is visible.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return strconv.QuoteToASCII(s[:n]) + "…"
	}
	return strconv.QuoteToASCII(s)
}

// idnaReason turns an x/net/idna error into words without echoing the
// library's formatting verbatim.
func idnaReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "disallowed rune"):
		return "a character is not allowed in domain names"
	case strings.Contains(msg, "invalid label"):
		return "a label breaks the IDNA rules (hyphens, joiners, right-to-left text or a malformed xn-- label)"
	default:
		return "a label could not be converted"
	}
}
