package human

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// csrfSkew is how far in the future a token's time may be: replicas'
// clocks differ a little.
const csrfSkew = time.Minute

// csrfLabel separates these MACs from any other use of the same key.
const csrfLabel = "tollgate gates/human csrf v1\x00"

// csrfLen is the decoded length of a token: time (8) ‖ HMAC-SHA256 (32).
const csrfLen = 8 + sha256.Size

// CSRF makes and checks the anti-forgery tokens of the approvals page
// (synchronizer tokens bound to the page's login session). A token is
// base64url of the issue time in unix milliseconds and an HMAC-SHA256 over
// a label, that time and the session id. Stateless: any replica with the
// same key checks any replica's tokens.
type CSRF struct{ key []byte }

// NewCSRF returns a CSRF with key, at least 32 bytes of secret (from the
// server's configuration, shared by replicas). The key is copied.
func NewCSRF(key []byte) (*CSRF, error) {
	if len(key) < 32 {
		return nil, errors.New("human: NewCSRF needs a key of at least 32 random bytes")
	}
	return &CSRF{key: append([]byte(nil), key...)}, nil
}

// Token returns the token for the form served at now to the login session
// sessionID. It returns "" for an empty session id, which no Check accepts.
func (c *CSRF) Token(sessionID string, now time.Time) string {
	if sessionID == "" || len(sessionID) > maxPrincipal {
		return ""
	}
	var b [csrfLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli()))
	copy(b[8:], c.mac(sessionID, b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Check reports whether token was made by Token for sessionID, no more than
// maxAge before now (and not more than a minute after it). The MAC is
// compared in constant time. Anything malformed is false.
func (c *CSRF) Check(sessionID, token string, now time.Time, maxAge time.Duration) bool {
	if sessionID == "" || len(sessionID) > maxPrincipal || maxAge <= 0 ||
		len(token) != base64.RawURLEncoding.EncodedLen(csrfLen) || !base64url(token) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != csrfLen {
		return false
	}
	// OWASP CSRF cheat sheet: compare the whole MAC in constant time first,
	// then judge the (now authentic) time.
	if !hmac.Equal(b[8:], c.mac(sessionID, b[:8])) {
		return false
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	return !issued.After(now.Add(csrfSkew)) && now.Sub(issued) <= maxAge
}

func (c *CSRF) mac(sessionID string, stamp []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(csrfLabel))
	m.Write(stamp)
	m.Write([]byte(sessionID))
	return m.Sum(nil)
}
