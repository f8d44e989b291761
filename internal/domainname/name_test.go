package domainname

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestParse(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 63+1+63+1+63+1+61 = 253, then one more character.
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 57) + ".com"
	tests := []struct {
		name  string
		in    string
		want  Name
		fails bool
	}{
		{name: "plain ascii", in: "shop.example", want: "shop.example"},
		{name: "case and trailing dot are canonicalised", in: "Shop.Example.", want: "shop.example"},
		{name: "subdomain", in: "api.shop.example", want: "api.shop.example"},
		{name: "digits and inner hyphen", in: "a-1.example", want: "a-1.example"},
		{name: "valid IDN münchen.de", in: "münchen.de", want: "xn--mnchen-3ya.de"},
		{name: "valid IDN in capitals", in: "MÜNCHEN.DE", want: "xn--mnchen-3ya.de"},
		{name: "valid IDN as A-label", in: "xn--mnchen-3ya.de", want: "xn--mnchen-3ya.de"},
		{name: "decomposed IDN is normalised (NFC)", in: "mu\u0308nchen.de", want: "xn--mnchen-3ya.de"},
		{name: "eszett is kept (non-transitional)", in: "straße.de", want: "xn--strae-oqa.de"},
		{name: "japanese han with hiragana", in: "例え.jp", want: "xn--r8jz45g.jp"},
		{name: "cyrillic under cyrillic tld", in: "пример.рф", want: "xn--e1afmkfd.xn--p1ai"},
		{name: "idn tld that skeletons to ascii", in: "пример.орг", want: "xn--e1afmkfd.xn--c1avg"},
		{name: "253 characters", in: name253, want: Name(name253)},

		{name: "empty", in: "", fails: true},
		{name: "missing TLD", in: "localhost", fails: true},
		{name: "254 characters", in: "c" + name253, fails: true},
		{name: "label of 64", in: strings.Repeat("a", 64) + ".com", fails: true},
		{name: "huge input", in: strings.Repeat("a.", 5000) + "com", fails: true},
		{name: "empty label", in: "shop..example", fails: true},
		{name: "leading dot", in: ".shop.example", fails: true},
		{name: "two trailing dots", in: "shop.example..", fails: true},
		{name: "leading hyphen", in: "-shop.example", fails: true},
		{name: "trailing hyphen", in: "shop-.example", fails: true},
		{name: "reserved hyphens in 3-4", in: "ab--cd.example", fails: true},
		{name: "fake A-label", in: "xn--abc.example", fails: true},
		{name: "A-label of ascii", in: "xn--shop-.example", fails: true},
		{name: "underscore", in: "_dmarc.shop.example", fails: true},
		{name: "space", in: "shop example.com", fails: true},
		{name: "tab", in: "shop.example\t", fails: true},
		{name: "newline header injection", in: "shop.example\r\nX-Evil: 1", fails: true},
		{name: "no-break space", in: "shop\u00a0.example", fails: true},
		{name: "nul byte", in: "shop.example\x00.evil", fails: true},
		{name: "shell metacharacters `;rm -rf`", in: "shop.example;rm -rf /", fails: true},
		{name: "command substitution", in: "$(id).example", fails: true},
		{name: "backticks", in: "`id`.example", fails: true},
		{name: "pipe", in: "a|b.example", fails: true},
		{name: "url not name", in: "https://shop.example/", fails: true},
		{name: "port", in: "shop.example:443", fails: true},
		{name: "wildcard", in: "*.shop.example", fails: true},
		{name: "ipv4 address", in: "192.168.0.1", fails: true},
		{name: "ipv6 address", in: "[::1]", fails: true},
		{name: "numeric tld", in: "shop.123", fails: true},
		{name: "hex ip trick", in: "0x7f.1", fails: true},
		{name: "invalid utf-8", in: "shop\xff.example", fails: true},
		{name: "zero-width space", in: "pay\u200bpal.com", fails: true},
		{name: "zero-width joiner", in: "pay\u200dpal.com", fails: true},
		{name: "zero-width non-joiner", in: "pay\u200cpal.com", fails: true},
		{name: "word joiner", in: "pay\u2060pal.com", fails: true},
		{name: "byte order mark", in: "\ufeffpaypal.com", fails: true},
		{name: "soft hyphen", in: "pay\u00adpal.com", fails: true},
		{name: "right-to-left override", in: "moc.\u202elapyap", fails: true},
		{name: "variation selector", in: "pay\ufe0fpal.com", fails: true},
		{name: "fullwidth dot", in: "paypal\uff0ecom", fails: true},
		{name: "ideographic full stop", in: "paypal\u3002com", fails: true},
		{name: "fullwidth letters", in: "ｐａｙｐａｌ.com", fails: true},
		{name: "ligature", in: "ﬁnance.com", fails: true},
		{name: "superscript digit", in: "shop².example", fails: true},
		{name: "mathematical bold letters", in: "𝐩𝐚𝐲𝐩𝐚𝐥.com", fails: true},
		{name: "cyrillic a in paypal", in: "pаypal.com", fails: true},
		{name: "greek omicron in google", in: "gοogle.com", fails: true},
		{name: "cyrillic раураl with a latin l", in: "раураl.com", fails: true},
		{name: "whole-script cyrillic раура", in: "раура.com", fails: true},
		{name: "whole-script cyrillic confusable", in: "рауреа.com", fails: true},
		{name: "whole-script greek confusable", in: "νισα.com", fails: true},
		{name: "latin lookalikes only (dotless i)", in: "gıthub.com", fails: true},
		{name: "latin alpha", in: "ɑpple.com", fails: true},
		{name: "punycode of a mixed-script label", in: "xn--pypal-4ve.com", fails: true},
		{name: "punycode of a whole-script confusable", in: "xn--80aa0cbo.com", fails: true},
		{name: "latin with han", in: "shop例.jp", fails: true},
		{name: "bidi rule violation", in: "aא.com", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.fails {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, want invalid_domain", tt.in, got)
				}
				if c := fault.CodeOf(err); c != InvalidDomain {
					t.Fatalf("Parse(%q) code = %s, want invalid_domain (%v)", tt.in, c, err)
				}
				if got != "" {
					t.Fatalf("Parse(%q) returned %q with an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExact(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Name
		fails bool
	}{
		{name: "canonical ascii", in: "shop.example", want: "shop.example"},
		{name: "canonical A-label", in: "xn--mnchen-3ya.de", want: "xn--mnchen-3ya.de"},
		{name: "canonical U-label", in: "münchen.de", want: "xn--mnchen-3ya.de"},
		{name: "trailing dot variant", in: "shop.example.", fails: true},
		{name: "uppercase variant", in: "Shop.example", fails: true},
		{name: "uppercase tld variant", in: "shop.EXAMPLE", fails: true},
		{name: "uppercase U-label variant", in: "MÜNCHEN.de", fails: true},
		{name: "uppercase A-label variant", in: "XN--MNCHEN-3YA.de", fails: true},
		{name: "decomposed U-label variant", in: "mu\u0308nchen.de", fails: true},
		{name: "invalid stays invalid", in: "shop_.example", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExact(tt.in)
			if tt.fails {
				if fault.CodeOf(err) != InvalidDomain {
					t.Fatalf("ParseExact(%q) = %q, %v; want invalid_domain", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseExact(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNameAccessors(t *testing.T) {
	n, err := Parse("Bücher.Example.")
	if err != nil {
		t.Fatal(err)
	}
	if n.String() != "xn--bcher-kva.example" || n.TLD() != "example" || n.Unicode() != "bücher.example" {
		t.Fatalf("got %q tld %q unicode %q", n, n.TLD(), n.Unicode())
	}
	idn, _ := Parse("пример.рф")
	if idn.TLD() != "xn--p1ai" {
		t.Fatalf("TLD = %q", idn.TLD())
	}
}

func TestMessagesNameTheProblem(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"pay\u200dpal.com", "U+200D zero width joiner"},
		{"paypal\uff0ecom", "U+FF0E fullwidth full stop"},
		{"shop.example;rm -rf /", "';'"},
		{"a_b.example", "underscore"},
		{"pаypal.com", "Cyrillic and Latin"},
		{"раура.com", "looks like the ASCII \"paypa\""},
		{"localhost", "no top-level domain"},
		{"Shop.example", ""}, // Parse accepts it
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(fault.PublicOf(err), tt.want) {
			t.Errorf("Parse(%q) message %q does not mention %q", tt.in, fault.PublicOf(err), tt.want)
		}
		// Untrusted input is quoted with invisible and non-ASCII runes escaped.
		if strings.ContainsAny(fault.PublicOf(err), "\u200d\uff0e\u0430") {
			t.Errorf("Parse(%q) message echoes raw lookalike runes: %q", tt.in, fault.PublicOf(err))
		}
	}
}

func TestSkeleton(t *testing.T) {
	same := [][2]string{
		{"pаypal.com", "paypal.com"},
		{"раураl.com", "paypal.com"},
		{"paypa1.com", "paypal.com"},
		{"rnicrosoft.com", "microsoft.com"},
		{"g00gle.com", "google.com"},
		{"PayPal.com", "paypal.com"},
		{"pay\u200bpal.com", "paypal.com"},
	}
	for _, p := range same {
		if Skeleton(p[0]) != Skeleton(p[1]) {
			t.Errorf("Skeleton(%q) = %q, Skeleton(%q) = %q; want equal", p[0], Skeleton(p[0]), p[1], Skeleton(p[1]))
		}
	}
	different := [][2]string{
		{"münchen.de", "munchen.de"},
		{"shop.example", "shops.example"},
	}
	for _, p := range different {
		if Skeleton(p[0]) == Skeleton(p[1]) {
			t.Errorf("Skeleton(%q) == Skeleton(%q)", p[0], p[1])
		}
	}
}
