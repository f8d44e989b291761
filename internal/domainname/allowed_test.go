package domainname

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func mustParse(t *testing.T, ss ...string) []Name {
	t.Helper()
	out := make([]Name, len(ss))
	for i, s := range ss {
		n, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		out[i] = n
	}
	return out
}

func TestAllowed(t *testing.T) {
	allowed := mustParse(t, "paypal.com", "münchen.de", "shop.example")
	tests := []struct {
		name      string
		candidate string
		allowed   []Name
		want      Name
		code      fault.Code
	}{
		{name: "exact ascii", candidate: "paypal.com", want: "paypal.com"},
		{name: "exact A-label", candidate: "xn--mnchen-3ya.de", want: "xn--mnchen-3ya.de"},
		{name: "exact U-label", candidate: "münchen.de", want: "xn--mnchen-3ya.de"},
		{name: "cyrillic a in paypal", candidate: "pаypal.com", code: LookalikeDomain},
		{name: "punycode of the cyrillic a", candidate: "xn--pypal-4ve.com", code: LookalikeDomain},
		{name: "digit one for l", candidate: "paypa1.com", code: LookalikeDomain},
		{name: "uppercase variant", candidate: "PayPal.com", code: LookalikeDomain},
		{name: "trailing dot variant", candidate: "paypal.com.", code: LookalikeDomain},
		{name: "uppercase IDN variant", candidate: "MÜNCHEN.de", code: LookalikeDomain},
		{name: "zero-width joiner", candidate: "pay\u200dpal.com", code: LookalikeDomain},
		{name: "fullwidth dot", candidate: "paypal\uff0ecom", code: LookalikeDomain},
		{name: "fullwidth letters", candidate: "ｐａｙｐａｌ.com", code: LookalikeDomain},
		{name: "other tld", candidate: "paypal.co", code: fault.ResourceForbidden},
		{name: "subdomain of allowed", candidate: "evil.paypal.com", code: fault.ResourceForbidden},
		{name: "unrelated name", candidate: "evil.example", code: fault.ResourceForbidden},
		{name: "unrelated name in capitals", candidate: "Evil.example", code: fault.ResourceForbidden},
		{name: "shell metacharacters `;rm -rf`", candidate: "shop.example;rm -rf /", code: InvalidDomain},
		{name: "missing TLD", candidate: "paypal", code: InvalidDomain},
		{name: "empty allowed list allows nothing", candidate: "paypal.com", allowed: []Name{}, code: fault.ResourceForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := allowed
			if tt.allowed != nil {
				list = tt.allowed
			}
			got, err := Allowed(tt.candidate, list)
			if tt.code == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Allowed(%q) = %q, %v; want %q", tt.candidate, got, err, tt.want)
				}
				return
			}
			if c := fault.CodeOf(err); c != tt.code {
				t.Fatalf("Allowed(%q) = %q, code %s (%v); want %s", tt.candidate, got, c, err, tt.code)
			}
			if got != "" {
				t.Fatalf("Allowed(%q) returned %q with an error", tt.candidate, got)
			}
			msg := fault.PublicOf(err)
			if !strings.Contains(msg, "othing was charged") {
				t.Fatalf("message %q does not say nothing was charged", msg)
			}
			if tt.code == LookalikeDomain && !strings.Contains(msg, "paypal.com") && !strings.Contains(msg, "xn--mnchen-3ya.de") {
				t.Fatalf("lookalike message %q does not name the allowed domain", msg)
			}
		})
	}
}
