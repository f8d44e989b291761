package domainname

import (
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// MaxWorkerNameLength is the longest Worker script name Cloudflare accepts.
const MaxWorkerNameLength = 63

// WorkerName returns the name of the Cloudflare Worker script that serves n
// in production. Every '-' of n becomes "--" and every '.' becomes "-":
// shop.example gives shop-example, a-b.c gives a--b-c and a.b-c gives
// a-b--c. The result matches ^[a-z0-9][a-z0-9-]{0,62}$.
//
// The mapping is injective, so no two domains ever share a Worker and a task
// allowed one domain can never replace another domain's Worker (the finding
// was shop.example and shop.other both becoming "shop", and a-b.c and a.b-c
// both becoming "a-b-c"). Proof: labels of a canonical Name are never empty
// and never begin or end with '-' (RFC 952/1123, checked by Parse), so a
// '.' is never next to a '-' or another '.'. In the encoding a '.' is
// therefore a run of exactly one hyphen between two letters or digits, and
// any other run is k hyphens written as 2k. A run of hyphens of odd length
// is exactly one dot, an even run of 2k is k hyphens, and the encoding is
// undone by DomainOfWorker. It follows that a Worker name holds hyphen runs
// of length 1 or of even length only, never 3: a name with "---" between
// letters (such as a preview name) is never any domain's WorkerName. It may
// hold "----": xn--bcher-kva.example gives xn----bcher--kva-example.
//
// n must be canonical, as Parse and ParseExact return it; any other Name is
// refused with invalid_domain, because only the label rules above make the
// encoding unambiguous. A result over 63 characters is refused with
// invalid_argument rather than shortened: shortening is where collisions
// came from.
func WorkerName(n Name) (string, error) {
	if err := checkCanonical(n); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(n) + strings.Count(string(n), "-"))
	for i := 0; i < len(n); i++ {
		switch c := n[i]; c {
		case '-':
			b.WriteString("--")
		case '.':
			b.WriteByte('-')
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if len(s) > MaxWorkerNameLength {
		return "", fault.New(fault.InvalidArgument, "the Worker name of "+string(n)+" would be "+strconv.Itoa(len(s))+
			" characters long, more than Cloudflare's "+strconv.Itoa(MaxWorkerNameLength)+"; nothing was uploaded. "+
			"A Worker is named after its whole domain (each dot as '-', each hyphen as \"--\"); deploy under a shorter domain.")
	}
	return s, nil
}

// DomainOfWorker is the inverse of WorkerName: it returns the domain whose
// production Worker is named script. It refuses with invalid_argument every
// script that is not exactly WorkerName of some domain: a hyphen at either
// end, a run of three or any odd number above one of hyphens, capitals, a
// decoded name that Parse refuses or does not return unchanged, and, as the
// final check, any script that WorkerName of the decoded name does not give
// back character for character.
func DomainOfWorker(script string) (Name, error) {
	if len(script) == 0 || len(script) > MaxWorkerNameLength {
		return "", notAWorkerName(script, "it is "+strconv.Itoa(len(script))+" characters long, not 1 to "+
			strconv.Itoa(MaxWorkerNameLength), nil)
	}
	var b strings.Builder
	b.Grow(len(script))
	for i := 0; i < len(script); {
		c := script[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteByte(c)
			i++
			continue
		case c != '-':
			return "", notAWorkerName(script, "it holds "+strconv.QuoteRune(rune(c))+
				"; a Worker name has only lowercase letters, digits and hyphens", nil)
		}
		j := i
		for j < len(script) && script[j] == '-' {
			j++
		}
		run := j - i
		switch {
		case i == 0 || j == len(script):
			return "", notAWorkerName(script, "it starts or ends with a hyphen", nil)
		case run == 1:
			b.WriteByte('.')
		case run%2 == 0:
			b.WriteString(strings.Repeat("-", run/2))
		default:
			// An odd run above one would be a dot next to a hyphen: a label
			// that starts or ends with one, which no domain has.
			return "", notAWorkerName(script, "it holds a run of "+strconv.Itoa(run)+" hyphens", nil)
		}
		i = j
	}
	decoded := b.String()
	n, err := Parse(decoded)
	if err != nil {
		return "", notAWorkerName(script, "it decodes to "+quote(decoded)+", which is not a domain name", err)
	}
	if string(n) != decoded {
		return "", notAWorkerName(script, "it decodes to "+quote(decoded)+", which is not written canonically", nil)
	}
	if again, err := WorkerName(n); err != nil || again != script {
		return "", notAWorkerName(script, "it does not encode "+string(n)+" exactly", err)
	}
	return n, nil
}

// checkCanonical refuses a Name that Parse would not return unchanged: a
// Name converted from a raw string is not validated, and without Parse's
// label rules WorkerName would not be injective.
func checkCanonical(n Name) error {
	p, err := Parse(string(n))
	if err != nil {
		if e, ok := err.(*fault.Error); ok {
			return &fault.Error{Code: e.Code, Public: e.Public + " Nothing was uploaded.", Cause: e.Cause}
		}
		return err
	}
	if p != n {
		return refuse(string(n), "it is not in canonical form", "pass the name Parse returns, "+string(p)+"; nothing was uploaded")
	}
	return nil
}

func notAWorkerName(script, why string, cause error) *fault.Error {
	return fault.Wrap(cause, fault.InvalidArgument, quote(script)+" is not the production Worker of any domain: "+why+
		"; nothing was changed. A domain's Worker is named with each dot as '-' and each hyphen as \"--\", e.g. shop-example for shop.example.")
}
