//go:build !nosandbox

package auth

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// FuzzVerifyAccessToken: the verifier never panics, refuses everything but
// the one token tollgate signed, and refuses with a *fault.Error carrying a
// reason.
func FuzzVerifyAccessToken(f *testing.F) {
	fx := newFixture(f)
	valid, err := fx.sts.Sign(fx.accessClaims(), TypAccessToken)
	must(f, err)
	f.Add(valid)
	for _, c := range attackCases() {
		f.Add(c.token(f, fx))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := fx.access.Verify(ctx, token)
		if err == nil {
			if token != valid || claims == nil {
				t.Fatalf("accepted a token tollgate did not sign: %q", token)
			}
			return
		}
		if code := fault.CodeOf(err); code != fault.Unauthenticated && code != fault.Unavailable {
			t.Fatalf("code %s for %q: %v", code, token, err)
		}
		if ReasonOf(err) == "" {
			t.Fatalf("no reason for %q: %v", token, err)
		}
	})
}

// FuzzParseAuthorizationDetails: the parser never panics, and whatever it
// accepts is canonical: encoding and parsing it again gives the same value.
func FuzzParseAuthorizationDetails(f *testing.F) {
	for _, s := range []string{
		`null`, `[]`,
		`[{"type":"tollgate:resources","domains":["shop.example"]}]`,
		`[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]`,
		`[{"type":"tollgate:spend","provider":"stripe","max_amount":"20","currency":"USD"},{"type":"tollgate:resources","domains":["A.example","b.example"]}]`,
		`[{"type":"tollgate:resources","domains":["a.example"],"domains":["b.example"]}]`,
		`[{"type":"x"}]`, `[{"type":"tollgate:spend","provider":"stripe","max_amount":1,"currency":"usd"}]`,
		`[[[[[[[]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := ParseAuthorizationDetails(data)
		if err != nil {
			if fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("code %s: %v", fault.CodeOf(err), err)
			}
			return
		}
		b, err := json.Marshal(ds)
		if err != nil {
			t.Fatalf("marshal %+v: %v", ds, err)
		}
		again, err := ParseAuthorizationDetails(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if len(ds) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(ds, again) {
			t.Fatalf("not canonical: %+v became %+v", ds, again)
		}
	})
}
