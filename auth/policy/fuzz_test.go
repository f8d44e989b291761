package policy

import (
	"os"
	"testing"
)

// FuzzParse: Parse never panics, refuses only with InvalidPolicy, and any
// policy it accepts can be evaluated without panicking and never allows a
// decision that carries errors.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"sandbox.cedar", "testdata/impersonate_pair.cedar", "testdata/broken.cedar"} {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(allowAllSrc))
	f.Add([]byte(`@id("x") forbid (principal, action, resource) when { principal.nope };`))
	f.Add([]byte(`permit (principal, action == Tollgate::Action::"spend", resource) when { context.amount_minor * 9223372036854775807 > 1 };`))
	f.Add([]byte(`forbid (principal, action, resource) when { principal.id like "*\*\u{0}*" };`))
	f.Fuzz(func(t *testing.T, src []byte) {
		e, err := Parse("fuzz.cedar", src)
		if err != nil {
			wantCode(t, err, InvalidPolicy)
			return
		}
		decisions := []Decision{
			e.MayActFor(devAgent, alice),
			e.MayActFor(devSub, devAgent.AsSubject()),
			e.MayImpersonate(pairA, pairB),
			e.MaxSpend(unixAgent, alice, "stripe", 10000, "usd"),
		}
		_, ds := e.AllowedScopes(devAgent, alice, []string{"dns:write", "catalog:read"})
		for _, d := range ds {
			decisions = append(decisions, d)
		}
		for _, d := range decisions {
			if d.Allow && len(d.Errors) > 0 {
				t.Fatalf("allowed with errors: %+v", d)
			}
		}
	})
}
