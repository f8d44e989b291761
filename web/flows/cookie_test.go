package flows

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sealFlow is a flow cookie value as setFlowCookie makes it.
func sealFlow(key []byte, principal, approval string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(principal)) + "|" + approval + "|" + strconv.FormatInt(expires.Unix(), 10)
	return payload + "|" + base64.RawURLEncoding.EncodeToString(flowMAC(key, payload))
}

// TestFlowCookieAttacks: a callback completes only with a flow cookie this
// server sealed, unexpired, naming the principal and approval it was
// started for.
func TestFlowCookieAttacks(t *testing.T) {
	key := []byte(strings.Repeat("f", 32))
	other := []byte(strings.Repeat("g", 32))
	now := time.Unix(1_800_000_000, 0)
	const alice = "user:alice@example.com"
	good := sealFlow(key, alice, "ap-1", now.Add(time.Minute))
	swap := func(v string, i int, s string) string {
		p := strings.Split(v, "|")
		p[i] = s
		return strings.Join(p, "|")
	}
	for _, tc := range []struct {
		name      string
		value     string // "" sends no cookie
		principal string
		ok        bool
	}{
		{"sealed, unexpired", good, alice, true},
		{"no cookie", "", "", false},
		{"sealed under another key", sealFlow(other, alice, "ap-1", now.Add(time.Minute)), "", false},
		{"expired", sealFlow(key, alice, "ap-1", now.Add(-time.Second)), "", false},
		{"principal swapped", swap(good, 0, base64.RawURLEncoding.EncodeToString([]byte("user:mallory@example.com"))), "", false},
		{"approval swapped", swap(good, 1, "ap-2"), "", false},
		{"expiry pushed out", swap(good, 2, strconv.FormatInt(now.Add(time.Hour).Unix(), 10)), "", false},
		{"MAC not base64", swap(good, 3, "!!!"), "", false},
		{"too few parts", "a|b|c", "", false},
		{"oversized", good + strings.Repeat("x", maxCookie), "", false},
		{"empty principal sealed", sealFlow(key, "", "ap-1", now.Add(time.Minute)), "", false},
		{"empty approval sealed", sealFlow(key, alice, "", now.Add(time.Minute)), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/oauth/callback/stripe", nil)
			if tc.value != "" {
				r.AddCookie(&http.Cookie{Name: flowCookie, Value: tc.value})
			}
			principal, approval, err := openFlowCookie(r, key, now)
			if tc.ok {
				if err != nil || principal != tc.principal || approval != "ap-1" {
					t.Fatalf("got %q %q %v, want %q ap-1", principal, approval, err, tc.principal)
				}
				return
			}
			if err != errNoFlow || principal != "" || approval != "" {
				t.Fatalf("got %q %q %v, want errNoFlow and nothing", principal, approval, err)
			}
		})
	}
}

// TestNewNeedsItsDependencies: flows without their stores are refused at
// build time.
func TestNewNeedsItsDependencies(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("flows without dependencies were built")
	}
}
