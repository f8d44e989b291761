package sts

import (
	"net/url"
	"testing"
)

// FuzzParseRequest: any form body either parses into a Request that keeps
// the parser's promises, or is refused with an RFC 6749 error; never a panic.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&actor_token=x.y.z&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&scope=dns%3Aread+dns%3Awrite",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&authorization_details=%5B%7B%22type%22%3A%22tollgate%3Aresources%22%2C%22domains%22%3A%5B%22shop.example%22%5D%7D%5D",
		"grant_type=client_credentials",
		"scope=a&scope=b",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a&subject_token_type=x&impersonate=maybe",
		"%zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		r, e := ParseRequest(form)
		if (r == nil) == (e == nil) {
			t.Fatalf("exactly one of request and error must be set: %v %v", r, e)
		}
		if e != nil {
			if e.Code == "" || e.Description == "" || e.Status != 400 {
				t.Fatalf("error without code, description or 400: %+v", e)
			}
			return
		}
		if r.SubjectToken == "" || len(r.Resources) > 8 || len(r.Description) > maxDescParam {
			t.Fatalf("accepted a request the parser promises to refuse: %+v", r)
		}
		for _, s := range r.Scopes {
			if !scopeToken(s) {
				t.Fatalf("accepted scope %q", s)
			}
		}
	})
}
