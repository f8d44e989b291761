package domainname

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// confusables maps lookalike characters to the lowercase ASCII they are
// mistaken for. It is a compact, hand-picked subset of Unicode's
// confusables.txt (UTS #39, https://www.unicode.org/Public/security/latest/confusables.txt,
// checked against the 10.0.0 data): the lowercase Latin, Greek, Cyrillic and
// Armenian letters that survive IDNA case mapping and whose prototype is an
// ASCII letter or digit, plus the ASCII-internal entries 0→O, 1→l and m→rn.
// Prototypes are folded to lowercase, because names are compared after case
// mapping. It is not the whole table: scripts outside these four (Cherokee,
// Hebrew, Arabic, Indic digits) are caught by the mixed-script rule instead.
var confusables = map[rune]string{
	// ASCII
	'0': "o", // DIGIT ZERO → LATIN CAPITAL LETTER O
	'1': "l", // DIGIT ONE → LATIN SMALL LETTER L
	'm': "rn",
	// Latin
	0x00E6: "ae", // æ
	0x0131: "i",  // ı dotless i
	0x0153: "oe", // œ
	0x018D: "g",  // ƍ
	0x01BD: "s",  // ƽ
	0x01C0: "l",  // ǀ dental click
	0x0237: "j",  // ȷ dotless j
	0x0251: "a",  // ɑ
	0x0261: "g",  // ɡ script g
	0x0263: "y",  // ɣ
	0x0269: "i",  // ɩ
	0x026A: "i",  // ɪ
	0x026F: "w",  // ɯ
	0x028B: "u",  // ʋ
	0x028F: "y",  // ʏ
	0x1D04: "c",  // ᴄ
	0x1D0F: "o",  // ᴏ
	0x1D11: "o",  // ᴑ
	0x1D1C: "u",  // ᴜ
	0x1D20: "v",  // ᴠ
	0x1D21: "w",  // ᴡ
	0x1D22: "z",  // ᴢ
	0x1D83: "g",  // ᶃ
	0x1D8C: "y",  // ᶌ
	0x1EFF: "y",  // ỿ
	// Greek
	0x03B1: "a", // α
	0x03B3: "y", // γ
	0x03B9: "i", // ι
	0x03BD: "v", // ν
	0x03BF: "o", // ο
	0x03C1: "p", // ρ
	0x03C3: "o", // σ
	0x03C5: "u", // υ
	0x03F1: "p", // ϱ
	0x03F2: "c", // ϲ lunate sigma
	0x03F3: "j", // ϳ
	// Cyrillic
	0x0430: "a",  // а
	0x0431: "6",  // б
	0x0433: "r",  // г
	0x0435: "e",  // е
	0x043E: "o",  // о
	0x0440: "p",  // р
	0x0441: "c",  // с
	0x0443: "y",  // у
	0x0445: "x",  // х
	0x0455: "s",  // ѕ
	0x0456: "i",  // і
	0x0458: "j",  // ј
	0x0461: "w",  // ѡ
	0x0475: "v",  // ѵ
	0x04AF: "y",  // ү
	0x04BB: "h",  // һ
	0x04BD: "e",  // ҽ
	0x04CF: "i",  // ӏ palochka (via ı in confusables.txt)
	0x04D5: "ae", // ӕ
	0x0501: "d",  // ԁ
	0x051B: "q",  // ԛ
	0x051D: "w",  // ԝ
	0xA647: "i",  // ꙇ
	// Armenian
	0x0561: "w", // ա
	0x0563: "q", // գ
	0x0566: "q", // զ
	0x0570: "h", // հ
	0x0578: "n", // ո
	0x057C: "n", // ռ
	0x057D: "u", // ս
	0x0581: "g", // ց
	0x0584: "f", // ք
	0x0585: "o", // օ
}

// Skeleton returns the UTS #39 §4 skeleton of s under the compact table
// above: lowercase, NFD, invisible characters dropped, each lookalike
// replaced by its prototype, NFD again. Two strings with equal skeletons
// look alike; "pаypal.com" (Cyrillic а) and "paypa1.com" both have the
// skeleton of "paypal.com". Diacritics are kept: "münchen" is not "munchen".
func Skeleton(s string) string {
	s = norm.NFD.String(strings.ToLower(s))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if isInvisible(r) {
			continue
		}
		if p, ok := confusables[r]; ok {
			b.WriteString(p)
			continue
		}
		b.WriteRune(r)
	}
	return norm.NFD.String(b.String())
}

// asciiLookalike maps only the non-ASCII lookalikes of label to their
// prototypes and reports whether the result is pure ASCII: then the label
// is a whole-label confusable of that ASCII text.
func asciiLookalike(label string) (string, bool) {
	var b strings.Builder
	for _, r := range norm.NFD.String(label) {
		if p, ok := confusables[r]; ok && r >= 0x80 {
			b.WriteString(p)
			continue
		}
		if r >= 0x80 {
			return "", false
		}
		b.WriteRune(r)
	}
	return b.String(), true
}
