package domainname

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// invisibleNames names the invisible characters seen in real attacks, so a
// refusal can say which one it found.
var invisibleNames = map[rune]string{
	0x00AD: "soft hyphen",
	0x034F: "combining grapheme joiner",
	0x200B: "zero width space",
	0x200C: "zero width non-joiner",
	0x200D: "zero width joiner",
	0x200E: "left-to-right mark",
	0x200F: "right-to-left mark",
	0x202E: "right-to-left override",
	0x2060: "word joiner",
	0xFEFF: "zero width no-break space",
}

// dotNames are characters that UTS #46 or NFKC turn into a label separator:
// "shop．example" would silently become shop.example.
var dotNames = map[rune]string{
	0x2024: "one dot leader",
	0x3002: "ideographic full stop",
	0xFE52: "small full stop",
	0xFF0E: "fullwidth full stop",
	0xFF61: "halfwidth ideographic full stop",
}

// isInvisible reports format characters (Cf: zero-width joiners, bidi
// controls, the BOM), variation selectors and the other default-ignorable
// code points: they render as nothing, so two names that look identical can
// differ by one of them (UTS #39 §3.1.1 excludes them from identifiers).
func isInvisible(r rune) bool {
	return r == 0x034F || unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// checkRunes refuses characters that never belong in a host name, with a
// message naming the character.
func checkRunes(s string) error {
	for _, r := range s {
		switch {
		case r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			continue
		case r == '_':
			return refuse(s, "it contains an underscore", "host names allow only letters, digits and hyphens (RFC 952, RFC 1123); use a hyphen")
		case unicode.IsSpace(r):
			return refuse(s, "it contains whitespace ("+runeName(r)+")", "remove the spaces")
		case unicode.IsControl(r):
			return refuse(s, "it contains a control character ("+runeName(r)+")", "send the name as plain text")
		case r < 0x80:
			// Shell and URL metacharacters: ; | & $ ` ( ) < > \ " ' * ? [ ] { } ! # ~ % = + , @ ^ : /
			return refuse(s, "it contains "+strconv.QuoteRune(r)+", which is not allowed in a domain name",
				"send only the name (letters, digits, hyphens and dots), without a scheme, path, port or command")
		case isInvisible(r):
			return refuse(s, "it contains an invisible character ("+runeName(r)+")",
				"invisible characters make two different names look the same; remove it")
		case dotNames[r] != "":
			return refuse(s, "it contains "+runeName(r)+", which some software treats as a dot",
				"separate labels with the ASCII full stop '.'")
		}
	}
	return nil
}

// checkCompat refuses compatibility characters (fullwidth letters, ligatures,
// superscripts, mathematical letters): IDNA2008 disallows them and UTS #46
// would map them to something else, so what is shown is not what is
// registered. nfc is the NFC form of the text to check; canonical
// equivalents are the same character and pass.
func checkCompat(input, nfc string) error {
	if norm.NFKC.IsNormalString(nfc) {
		return nil
	}
	for _, r := range nfc {
		if !norm.NFKC.IsNormalString(string(r)) {
			return refuse(input, "it contains "+runeName(r)+", a compatibility form of "+strconv.Quote(norm.NFKC.String(string(r))),
				"type the plain character instead")
		}
	}
	return refuse(input, "it contains a compatibility character", "type plain characters instead")
}

// cjk lists the script mixes allowed within one label: UTS #39 §5.2
// "Highly Restrictive" combinations for Japanese, Chinese and Korean, less
// Latin (a Latin letter among CJK is where lookalikes hide).
var cjk = [][]string{
	{"Han", "Hiragana", "Katakana"},
	{"Han", "Bopomofo"},
	{"Han", "Hangul"},
}

// checkScripts refuses a label whose letters come from more than one script
// (Latin "p" with Cyrillic "а"), except the CJK mixes above. Digits, the
// hyphen and combining marks belong to Common or Inherited and are ignored.
func checkScripts(input, label string) error {
	seen := map[string]bool{}
	for _, r := range label {
		if unicode.In(r, unicode.Common, unicode.Inherited) {
			continue
		}
		seen[scriptOf(r)] = true
	}
	if len(seen) <= 1 {
		return nil
	}
	for _, set := range cjk {
		if subset(seen, set) {
			return nil
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return refuse(input, "its label "+strconv.QuoteToASCII(label)+" mixes scripts ("+strings.Join(names, " and ")+")",
		"mixed-script labels are how lookalike names are built; use one script per label")
}

func scriptOf(r rune) string {
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

func subset(seen map[string]bool, set []string) bool {
	for n := range seen {
		found := false
		for _, s := range set {
			if n == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func runeName(r rune) string {
	if n := invisibleNames[r]; n != "" {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	if n := dotNames[r]; n != "" {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	return fmt.Sprintf("U+%04X", r)
}
