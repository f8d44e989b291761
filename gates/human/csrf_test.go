package human

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestCSRF(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c, err := NewCSRF(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 8 // NewCSRF copied it
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	tok := c.Token("login-1", now)
	other, _ := NewCSRF(bytes.Repeat([]byte{9}, 32))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[len(raw)-1] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	raw, _ = base64.RawURLEncoding.DecodeString(tok)
	raw[7]++ // the time, MAC unchanged
	retimed := base64.RawURLEncoding.EncodeToString(raw)

	tests := []struct {
		name    string
		session string
		token   string
		at      time.Time
		maxAge  time.Duration
		want    bool
	}{
		{"fresh token of this session", "login-1", tok, now.Add(time.Minute), time.Hour, true},
		{"at exactly max age", "login-1", tok, now.Add(time.Hour), time.Hour, true},
		{"CSRF-less POST", "login-1", "", now, time.Hour, false},
		{"token of another login session", "login-2", tok, now, time.Hour, false},
		{"token stolen for an empty session", "", tok, now, time.Hour, false},
		{"expired token", "login-1", tok, now.Add(time.Hour + time.Millisecond), time.Hour, false},
		{"token from the future", "login-1", c.Token("login-1", now.Add(2*time.Minute)), now, time.Hour, false},
		{"tampered MAC", "login-1", tampered, now, time.Hour, false},
		{"tampered time", "login-1", retimed, now, time.Hour, false},
		{"token of another deployment", "login-1", other.Token("login-1", now), now, time.Hour, false},
		{"truncated", "login-1", tok[:len(tok)-1], now, time.Hour, false},
		{"padded", "login-1", tok + "=", now, time.Hour, false},
		{"with a newline", "login-1", tok[:5] + "\n" + tok[6:], now, time.Hour, false},
		{"no max age", "login-1", tok, now, 0, false},
		{"long garbage", "login-1", strings.Repeat("A", 10000), now, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Check(tt.session, tt.token, tt.at, tt.maxAge); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
	if c.Token("", now) != "" {
		t.Fatal("a token for no session")
	}
	if _, err := NewCSRF(make([]byte, 31)); err == nil {
		t.Fatal("NewCSRF accepted a short key")
	}
}
