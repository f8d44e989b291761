package domainname

import (
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"shop.example", "Shop.Example.", "münchen.de", "xn--mnchen-3ya.de", "pаypal.com",
		"раура.com", "xn--pypal-4ve.com", "pay\u200dpal.com", "paypal\uff0ecom", "例え.jp",
		"пример.рф", "straße.de", "a..b", "-a.b", "1.2.3.4", "shop.example;rm -rf /",
		"aא.com", "xn--abc.com", "ﬁ.com", "İstanbul.com", "ς.gr", "l·l.cat",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if c := fault.CodeOf(err); c != InvalidDomain {
				t.Fatalf("Parse(%q) code %s", s, c)
			}
			if _, err := Allowed(s, []Name{"shop.example"}); err == nil {
				t.Fatalf("Allowed accepted %q which Parse refused", s)
			}
			return
		}
		// Canonical form is a fixed point of every entry point.
		if again, err := Parse(string(n)); err != nil || again != n {
			t.Fatalf("Parse(Parse(%q)) = %q, %v; want %q", s, again, err, n)
		}
		if exact, err := ParseExact(string(n)); err != nil || exact != n {
			t.Fatalf("ParseExact(%q) = %q, %v", n, exact, err)
		}
		if u, err := Parse(n.Unicode()); err != nil || u != n {
			t.Fatalf("Parse(Unicode(%q)) = %q, %v", n, u, err)
		}
		if got, err := Allowed(string(n), []Name{n}); err != nil || got != n {
			t.Fatalf("Allowed(%q, itself) = %q, %v", n, got, err)
		}
		if len(n) > MaxLength || n.TLD() == "" {
			t.Fatalf("Parse(%q) = %q breaks the length or TLD rule", s, n)
		}
	})
}
