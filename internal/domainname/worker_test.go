package domainname

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// workerNamePattern is what Cloudflare accepts as a Worker script name.
var workerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

var hyphenRuns = regexp.MustCompile(`-+`)

func TestWorkerName(t *testing.T) {
	label59 := strings.Repeat("a", 59)
	tests := []struct {
		name string
		in   string // given to Parse first
		raw  Name   // given to WorkerName as is, when in is empty
		want string
		code fault.Code
	}{
		{name: "dot becomes hyphen", in: "shop.example", want: "shop-example"},
		{name: "first-label collision: shop.other stays apart", in: "shop.other", want: "shop-other"},
		{name: "hyphen before dot: a-b.c", in: "a-b.c", want: "a--b-c"},
		{name: "hyphen after dot: a.b-c.example", in: "a.b-c.example", want: "a-b--c-example"},
		{name: "hyphen before dot: a-b.c.example", in: "a-b.c.example", want: "a--b-c-example"},
		{name: "three labels", in: "a.b.c", want: "a-b-c"},
		{name: "subdomain", in: "api.shop.example", want: "api-shop-example"},
		{name: "digits", in: "123.com", want: "123-com"},
		{name: "two hyphens inside a label", in: "a--b.com", want: "a----b-com"},
		{name: "A-label", in: "xn--bcher-kva.example", want: "xn----bcher--kva-example"},
		{name: "U-label is encoded as its A-label", in: "münchen.de", want: "xn----mnchen--3ya-de"},
		{name: "IDN TLD", in: "пример.рф", want: "xn----e1afmkfd-xn----p1ai"},
		{name: "case and trailing dot are canonicalised by Parse", in: "Shop.Example.", want: "shop-example"},
		{name: "63 characters", in: label59 + ".com", want: label59 + "-com"},

		{name: "64 characters refused, not shortened", in: label59 + "a.com", code: fault.InvalidArgument},
		{name: "doubled hyphens push it over 63", in: strings.Repeat("a-", 25) + "a.com", code: fault.InvalidArgument},
		{name: "253-character name refused", in: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 57) + ".com", code: fault.InvalidArgument},

		{name: "unparsed: uppercase", raw: "Shop.example", code: InvalidDomain},
		{name: "unparsed: trailing dot", raw: "shop.example.", code: InvalidDomain},
		{name: "unparsed: label starting with a hyphen", raw: "-a.com", code: InvalidDomain},
		{name: "unparsed: label ending with a hyphen", raw: "a-.b", code: InvalidDomain},
		{name: "unparsed: hyphen beside a dot would be ambiguous", raw: "a-.-b", code: InvalidDomain},
		{name: "unparsed: empty label", raw: "a..com", code: InvalidDomain},
		{name: "unparsed: underscore", raw: "_dmarc.shop.example", code: InvalidDomain},
		{name: "unparsed: single label", raw: "shop", code: InvalidDomain},
		{name: "unparsed: empty", raw: "", code: InvalidDomain},
		{name: "unparsed: U-label instead of A-label", raw: "münchen.de", code: InvalidDomain},
		{name: "unparsed: path traversal", raw: "../a.com", code: InvalidDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.raw
			if tt.in != "" {
				n = mustParse(t, tt.in)[0]
			}
			got, err := WorkerName(n)
			if tt.code != "" {
				if c := fault.CodeOf(err); c != tt.code || got != "" {
					t.Fatalf("WorkerName(%q) = %q, code %s (%v); want %s", n, got, c, err, tt.code)
				}
				if msg := fault.PublicOf(err); !strings.Contains(msg, "othing was uploaded") {
					t.Fatalf("message %q does not say nothing was uploaded", msg)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("WorkerName(%q) = %q, %v; want %q", n, got, err, tt.want)
			}
			if !workerNamePattern.MatchString(got) {
				t.Fatalf("WorkerName(%q) = %q is not a valid Worker name", n, got)
			}
			back, err := DomainOfWorker(got)
			if err != nil || back != n {
				t.Fatalf("DomainOfWorker(%q) = %q, %v; want %q", got, back, err, n)
			}
		})
	}
}

func TestWorkerNameTooLongMessage(t *testing.T) {
	n := mustParse(t, strings.Repeat("a", 60)+".com")[0]
	_, err := WorkerName(n)
	msg := fault.PublicOf(err)
	for _, want := range []string{"64 characters", "63", "nothing was uploaded"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}

func TestDomainOfWorker(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   Name
		fails  bool
	}{
		{name: "plain", script: "shop-example", want: "shop.example"},
		{name: "hyphen in first label", script: "a--b-c", want: "a-b.c"},
		{name: "hyphen in second label", script: "a-b--c-example", want: "a.b-c.example"},
		{name: "hyphen in first label of three", script: "a--b-c-example", want: "a-b.c.example"},
		{name: "hyphen in TLD (a.b-c is no domain)", script: "a-b--c", fails: true},
		{name: "A-label", script: "xn----bcher--kva-example", want: "xn--bcher-kva.example"},
		{name: "three labels", script: "a-b-c", want: "a.b.c"},

		{name: "trailing hyphens", script: "shop--", fails: true},
		{name: "trailing hyphen", script: "shop-", fails: true},
		{name: "leading hyphen", script: "-a", fails: true},
		{name: "leading double hyphen", script: "--a-com", fails: true},
		{name: "run of three: dot beside a hyphen", script: "a---b", fails: true},
		{name: "run of five", script: "a-----b", fails: true},
		{name: "preview name", script: "shop-example---preview-abc", fails: true},
		{name: "capitals", script: "Shop", fails: true},
		{name: "capitals in a valid shape", script: "Shop-example", fails: true},
		{name: "empty", script: "", fails: true},
		{name: "64 characters", script: strings.Repeat("a", 60) + "-com", fails: true},
		{name: "single label", script: "shop", fails: true},
		{name: "numeric TLD", script: "shop-123", fails: true},
		{name: "IP address", script: "192-168-0-1", fails: true},
		{name: "reserved hyphens in 3-4", script: "ab----cd-com", fails: true},
		{name: "fake A-label", script: "xn----abc-com", fails: true},
		{name: "dot", script: "shop.example", fails: true},
		{name: "underscore", script: "shop_example-com", fails: true},
		{name: "slash", script: "a-com/..", fails: true},
		{name: "percent-encoded slash", script: "a%2fb-com", fails: true},
		{name: "non-ASCII", script: "münchen-de", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DomainOfWorker(tt.script)
			if tt.fails {
				if c := fault.CodeOf(err); c != fault.InvalidArgument || got != "" {
					t.Fatalf("DomainOfWorker(%q) = %q, code %s (%v); want %s", tt.script, got, c, err, fault.InvalidArgument)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DomainOfWorker(%q) = %q, %v; want %q", tt.script, got, err, tt.want)
			}
		})
	}
}

// TestWorkerNameInjectiveExhaustive encodes every string over a small
// alphabet that Parse accepts and checks that no two names share a Worker.
func TestWorkerNameInjectiveExhaustive(t *testing.T) {
	alphabet := []byte("a1-.")
	maxLen := 9
	if testing.Short() {
		maxLen = 7
	}
	seen := map[string]Name{}
	var walk func(prefix []byte)
	walk = func(prefix []byte) {
		if len(prefix) > 0 {
			if n, err := Parse(string(prefix)); err == nil {
				w, err := WorkerName(n)
				if err != nil {
					t.Fatalf("WorkerName(%q): %v", n, err)
				}
				if other, ok := seen[w]; ok && other != n {
					t.Fatalf("WorkerName(%q) = WorkerName(%q) = %q", n, other, w)
				}
				seen[w] = n
			}
		}
		if len(prefix) == maxLen {
			return
		}
		for _, c := range alphabet {
			walk(append(prefix, c))
		}
	}
	walk(nil)
	if len(seen) == 0 {
		t.Fatal("no name over the alphabet parsed")
	}
	t.Logf("%d names, no two share a Worker", len(seen))
}

var workerSeeds = []string{
	"shop.example", "shop.other", "a-b.c", "a.b-c", "a.b-c.example", "a-b.c.example", "a.b.c", "a--b.com", "xn--bcher-kva.example",
	"münchen.de", "пример.рф", "Shop.Example.", "123.com", "a-1.example", "-a.b", "a-.b", "a_b.com",
	"shop", "", strings.Repeat("a", 59) + ".com", strings.Repeat("a", 60) + ".com",
}

func FuzzWorkerNameRoundTrip(f *testing.F) {
	for _, s := range workerSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Whatever s is, WorkerName accepts it as a Name only when it is
		// canonical.
		if w, err := WorkerName(Name(s)); err == nil {
			if p, perr := Parse(s); perr != nil || string(p) != s {
				t.Fatalf("WorkerName(Name(%q)) = %q for a name that is not canonical", s, w)
			}
		}
		n, err := Parse(s)
		if err != nil {
			return
		}
		w, err := WorkerName(n)
		if err != nil {
			if c := fault.CodeOf(err); c != fault.InvalidArgument || len(n)+strings.Count(string(n), "-") <= MaxWorkerNameLength {
				t.Fatalf("WorkerName(%q) refused (%v) a name that fits", n, err)
			}
			return
		}
		if !workerNamePattern.MatchString(w) {
			t.Fatalf("WorkerName(%q) = %q", n, w)
		}
		for _, run := range hyphenRuns.FindAllString(w, -1) {
			if len(run) > 1 && len(run)%2 == 1 {
				t.Fatalf("WorkerName(%q) = %q holds an odd run of %d hyphens", n, w, len(run))
			}
		}
		back, err := DomainOfWorker(w)
		if err != nil || back != n {
			t.Fatalf("DomainOfWorker(WorkerName(%q)) = %q, %v", n, back, err)
		}
	})
}

func FuzzWorkerNameInjective(f *testing.F) {
	pairs := [][2]string{
		{"shop.example", "shop.other"},
		{"a-b.c", "a.b-c"},
		{"a-b.c.example", "a.b-c.example"},
		{"a-b.c", "a.b.c"},
		{"a--b.com", "a-.-b.com"},
		{"a--b.com", "a.-b.com"},
		{"xn--bcher-kva.example", "xn-.bcher-kva.example"},
		{"ab.c-d", "ab-c.d"},
		{"a-b-c.d", "a.b.c.d"},
	}
	for _, p := range pairs {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na, err := Parse(a)
		if err != nil {
			return
		}
		nb, err := Parse(b)
		if err != nil {
			return
		}
		wa, err := WorkerName(na)
		if err != nil {
			return
		}
		wb, err := WorkerName(nb)
		if err != nil {
			return
		}
		if wa == wb && na != nb {
			t.Fatalf("WorkerName(%q) = WorkerName(%q) = %q", na, nb, wa)
		}
		if wa != wb && na == nb {
			t.Fatalf("WorkerName(%q) gave %q and %q", na, wa, wb)
		}
	})
}

func FuzzDomainOfWorker(f *testing.F) {
	for _, s := range []string{
		"shop-example", "shop-other", "a--b-c", "a-b--c", "a-b-c", "xn----bcher--kva-example",
		"shop--", "-a", "a---b", "Shop", "", "shop", "shop-123", "ab----cd-com", "shop-example---preview-abc",
		"a----b-com", "192-168-0-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		n, err := DomainOfWorker(script)
		if err != nil {
			if c := fault.CodeOf(err); c != fault.InvalidArgument || n != "" {
				t.Fatalf("DomainOfWorker(%q) = %q, code %s (%v)", script, n, c, err)
			}
			return
		}
		if !workerNamePattern.MatchString(script) {
			t.Fatalf("DomainOfWorker accepted %q, which Cloudflare would not", script)
		}
		if p, err := Parse(string(n)); err != nil || p != n {
			t.Fatalf("DomainOfWorker(%q) = %q, which is not canonical", script, n)
		}
		if w, err := WorkerName(n); err != nil || w != script {
			t.Fatalf("WorkerName(DomainOfWorker(%q)) = %q, %v", script, w, err)
		}
	})
}
