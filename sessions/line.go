package sessions

import "strings"

// Line makes s one printable line of at most n bytes, as an audit entry's
// text fields want: control characters (a summary's newlines) become
// spaces, invalid UTF-8 becomes "?", and a cut is marked with "…".
func Line(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
