package domainname

import (
	"strconv"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Allowed returns candidate as a Name when it is written exactly as one of
// the allowed names (ParseExact, then equality). Otherwise it refuses, and
// nothing may be held or charged:
//
//   - lookalike_domain when candidate resembles an allowed name without
//     being it: another case, a trailing dot, an invisible character, a
//     homoglyph or an encoding of one (equal skeletons);
//   - invalid_domain when candidate is not a domain name at all;
//   - resource_forbidden when it is a valid name that is simply not listed.
//
// allowed holds canonical names from Parse or ParseExact; an empty list
// allows nothing.
func Allowed(candidate string, allowed []Name) (Name, error) {
	n, exactErr := ParseExact(candidate)
	if exactErr == nil {
		for _, a := range allowed {
			if n == a {
				return n, nil
			}
		}
	}
	if len(candidate) <= maxInput {
		sk := looseSkeleton(candidate)
		for _, a := range allowed {
			if sk != "" && sk == Skeleton(a.Unicode()) {
				return "", fault.New(LookalikeDomain, quote(candidate)+" looks like "+string(a)+
					" but is not written exactly as it (lookalike letters, letter case, a trailing dot or an invisible character); "+
					"nothing was charged. Use exactly one of the domains this task may use: "+list(allowed)+".")
			}
		}
	}
	if exactErr != nil {
		if _, err := Parse(candidate); err != nil {
			return "", withNothingCharged(err)
		}
	}
	return "", fault.New(fault.ResourceForbidden, quote(candidate)+" is not among the domains this task may use ("+
		list(allowed)+"); nothing was charged. Ask for a token whose tollgate:resources names it.")
}

// looseSkeleton is the skeleton of what candidate would look like to a
// person, computed without refusing anything: compatibility forms folded
// (NFKC), any dot-like separator read as a dot, one trailing dot dropped,
// xn-- labels decoded.
func looseSkeleton(candidate string) string {
	s := norm.NFKC.String(candidate)
	s = strings.Map(func(r rune) rune {
		if dotNames[r] != "" {
			return '.'
		}
		return r
	}, s)
	s = strings.TrimSuffix(s, ".")
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if lower := strings.ToLower(l); strings.HasPrefix(lower, "xn--") {
			if u, err := idna.Punycode.ToUnicode(lower); err == nil {
				labels[i] = u
			}
		}
	}
	return Skeleton(strings.Join(labels, "."))
}

// list names the allowed domains for a message, bounded.
func list(allowed []Name) string {
	if len(allowed) == 0 {
		return "none"
	}
	const max = 10
	var b strings.Builder
	for i, a := range allowed {
		if i == max {
			b.WriteString(" and " + strconv.Itoa(len(allowed)-max) + " more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}

func withNothingCharged(err error) error {
	if e, ok := err.(*fault.Error); ok {
		return &fault.Error{Code: e.Code, Public: e.Public + " Nothing was charged.", Cause: e.Cause}
	}
	return err
}
