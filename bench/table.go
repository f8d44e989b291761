package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// row is one line of the table. Zero numbers print as "—".
type row struct {
	what, how string
	n         int
	rate      float64
	p50, p99  time.Duration
	note      string
}

func sampleRow(what, how string, s sample, note string) row {
	return row{what: what, how: how, n: s.calls, rate: s.rate(), p50: s.pct(50), p99: s.pct(99), note: note}
}

// printTable writes the rows as one markdown table.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| measurement | configuration | n | per second | p50 | p99 | notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.what, r.how, count(r.n), perSecond(r.rate), dur(r.p50), dur(r.p99),
			strings.ReplaceAll(r.note, "|", "\\|"))
	}
}

func count(n int) string {
	if n == 0 {
		return "—"
	}
	return thousands(int64(n))
}

func perSecond(f float64) string {
	if f == 0 {
		return "—"
	}
	return thousands(int64(f + 0.5))
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < 0:
		return "−" + dur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

// ratio is guarded over baseline, "×1.23".
func ratio(guarded, base float64) string {
	if base == 0 {
		return "n/a"
	}
	return fmt.Sprintf("×%.2f", guarded/base)
}
