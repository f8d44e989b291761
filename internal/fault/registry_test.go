package fault

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRegistryEntriesAreComplete(t *testing.T) {
	r := registry()
	for i, s := range r {
		switch {
		case s.Code == "" || strings.ToLower(string(s.Code)) != string(s.Code) || strings.ContainsAny(string(s.Code), " -."):
			t.Errorf("entry %d: code %q is not a lower_snake_case name", i, s.Code)
		case i > 0 && r[i-1].Code >= s.Code:
			t.Errorf("entry %q: not after %q; keep the registry sorted by code, each code once", s.Code, r[i-1].Code)
		}
		if s.HTTP < 400 || s.HTTP > 599 || http.StatusText(s.HTTP) == "" {
			t.Errorf("%s: HTTP %d is not a 4xx or 5xx status", s.Code, s.HTTP)
		}
		if strings.TrimSpace(s.Meaning) == "" || strings.ContainsAny(s.Meaning, "\n|") {
			t.Errorf("%s: the meaning must be one line of text without |", s.Code)
		}
		if strings.ContainsAny(s.HTTPNote, "\n|") || s.HTTPNote != "" && !s.Surfaces.Has(SurfaceHTTP) {
			t.Errorf("%s: an HTTP note is one line, for a code that reaches HTTP", s.Code)
		}
		if s.Surfaces&^(SurfaceTool|SurfaceHTTP|SurfaceCLI) != 0 {
			t.Errorf("%s: unknown surface bits %b", s.Code, s.Surfaces)
		}
	}
}

// The shared codes this package declares are registered with the forms
// their edges use.
func TestSharedCodes(t *testing.T) {
	for _, tc := range []struct {
		code      Code
		status    int
		retryable bool
	}{
		{Internal, http.StatusInternalServerError, false},
		{InvalidArgument, http.StatusBadRequest, false},
		{NotFound, http.StatusNotFound, false},
		{Unauthenticated, http.StatusUnauthorized, false},
		{InsufficientScope, http.StatusForbidden, false},
		{ResourceForbidden, http.StatusForbidden, false},
		{SessionRevoked, http.StatusUnauthorized, false},
		{SessionExpired, http.StatusUnauthorized, false},
		{Unavailable, http.StatusServiceUnavailable, true},
		{AccountRequired, http.StatusForbidden, false},
		{AccountRelinkRequired, http.StatusForbidden, false},
		{BillingRequired, http.StatusPaymentRequired, false},
	} {
		s, ok := Lookup(tc.code)
		if !ok || s.HTTP != tc.status || s.Retryable != tc.retryable {
			t.Errorf("%s: got %+v, %v; want HTTP %d, retryable %v", tc.code, s, ok, tc.status, tc.retryable)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"a registered code", New(Unavailable, "down"), http.StatusServiceUnavailable},
		{"wrapped in another error", fmt.Errorf("ctx: %w", New(NotFound, "gone")), http.StatusNotFound},
		{"a code of another package", New("rate_limited", "slow down"), http.StatusTooManyRequests},
		{"a plain Go error is a bug, so 500", errors.New("boom"), http.StatusInternalServerError},
		{"an unregistered code fails closed with 500", New("no_such_code", "?"), http.StatusInternalServerError},
	} {
		if got := HTTPStatus(tc.err); got != tc.want {
			t.Errorf("%s: HTTPStatus = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRegistryIsTheCallersCopy(t *testing.T) {
	r := Registry()
	r[0].Meaning = "changed"
	if Registry()[0].Meaning == "changed" {
		t.Fatal("Registry returned shared state")
	}
}
