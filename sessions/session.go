package sessions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Status is a session's state. Expired is never stored: it is derived at
// read time from Expires and the Store's clock.
type Status string

const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"

	// statusPending marks a session whose parent lives under another
	// principal while it is being linked to that parent. It never passes
	// Check and is invisible to reads.
	statusPending Status = "pending"
)

// Session is one task session. Times are kept to the millisecond.
type Session struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	// Actors is the delegation chain, the current agent first.
	Actors               []string        `json:"actors,omitempty"`
	ClientID             string          `json:"client_id,omitempty"`
	Scopes               []string        `json:"scopes,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	// Parent is the session this one was exchanged from (a sub-agent's
	// session names its upstream agent's). ParentPrincipal is that session's
	// principal; Create fills it with Principal when it is empty.
	Parent          string    `json:"parent,omitempty"`
	ParentPrincipal string    `json:"parent_principal,omitempty"`
	Created         time.Time `json:"created"`
	// Expires is the expiry of the longest-lived token issued for the
	// session; AddToken moves it later, never earlier.
	Expires       time.Time `json:"expires"`
	Status        Status    `json:"status"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	Description   string    `json:"description,omitempty"`
	// TokenHashes are HashToken of every token issued for the session, sorted.
	TokenHashes []string `json:"token_hashes,omitempty"`
}

// Node is a session and its descendants, for display (`session show`,
// `audit show --session`).
type Node struct {
	Session
	Children []*Node `json:"children,omitempty"`
}

// ListFilter selects sessions for List. The zero value lists up to
// DefaultListLimit sessions of every principal and status.
type ListFilter struct {
	Principal string // "" for every principal (operator use)
	Status    Status // "" for any status
	Limit     int    // 0 for DefaultListLimit; at most MaxListLimit
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// HashToken returns the lowercase hex SHA-256 of a token, the form in which
// AddToken and Session.TokenHashes record tokens. The token itself is never
// stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// derive returns the visible status from the stored one at time now.
func derive(stored Status, expires, now time.Time) Status {
	if stored == StatusActive && !now.Before(expires) {
		return StatusExpired
	}
	return stored
}

func validStatusFilter(s Status) bool {
	switch s {
	case "", StatusActive, StatusRevoked, StatusExpired:
		return true
	}
	return false
}

// validDescription accepts UTF-8 text up to 4096 bytes; newlines and tabs
// are allowed, other control characters are not.
func validDescription(d string) bool {
	if d == "" {
		return true
	}
	return printable(stripLayout(d), maxDescription)
}

func stripLayout(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\t' {
			b[i] = ' '
		}
	}
	return string(b)
}
