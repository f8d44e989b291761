package auth

import (
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxDelegationDepth is the most actors a delegation chain may hold (SPEC §4).
const MaxDelegationDepth = 5

// Actor is an RFC 8693 §4.1 "act" (or §4.4 "may_act") claim: the party
// acting now, and nested in Act the one that acted before it.
type Actor struct {
	Sub string `json:"sub"`
	Act *Actor `json:"act,omitempty"`
}

// NewActorChain builds the nested act claim for chain, the current actor
// first: NewActorChain("b", "a") is {"sub":"b","act":{"sub":"a"}}.
// It returns nil for an empty chain.
func NewActorChain(chain ...string) *Actor {
	var a *Actor
	for i := len(chain) - 1; i >= 0; i-- {
		a = &Actor{Sub: chain[i], Act: a}
	}
	return a
}

// Chain flattens the act claim into subjects, the current actor first.
// A nil Actor has an empty chain.
func (a *Actor) Chain() []string {
	var out []string
	for ; a != nil; a = a.Act {
		out = append(out, a.Sub)
	}
	return out
}

// Depth is the number of actors in the chain.
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// Contains reports whether sub is anywhere in the chain (a delegation loop
// when it is about to be added again).
func (a *Actor) Contains(sub string) bool {
	for ; a != nil; a = a.Act {
		if a.Sub == sub {
			return true
		}
	}
	return false
}

// validate refuses chains deeper than max or with an empty subject.
func (a *Actor) validate(max int) *Rejection {
	if d := a.Depth(); d > max {
		return rejection(ReasonBadAct, "act chain has %d actors, at most %d allowed", d, max)
	}
	for ; a != nil; a = a.Act {
		if a.Sub == "" {
			return rejection(ReasonBadAct, "act entry without sub")
		}
	}
	return nil
}

// Claims are the claims of a tollgate access (task) token (SPEC §4, RFC 9068).
type Claims struct {
	Issuer               string               `json:"iss"`
	Subject              string               `json:"sub"`
	Audience             string               `json:"aud"`
	Expiry               *jwt.NumericDate     `json:"exp,omitempty"`
	NotBefore            *jwt.NumericDate     `json:"nbf,omitempty"`
	IssuedAt             *jwt.NumericDate     `json:"iat,omitempty"`
	ID                   string               `json:"jti"`
	Scope                string               `json:"scope,omitempty"`
	ClientID             string               `json:"client_id"`
	SessionID            string               `json:"sid"`
	ParentSessionID      string               `json:"parent_sid,omitempty"`
	Act                  *Actor               `json:"act,omitempty"`
	MayAct               *Actor               `json:"may_act,omitempty"`
	AuthorizationDetails AuthorizationDetails `json:"authorization_details,omitempty"`
}

// Scopes returns the scope claim split on spaces.
func (c *Claims) Scopes() []string { return splitScope(c.Scope) }

// validate checks what RFC 9068 §2.2 and SPEC §4 require of an access token
// beyond the registered claims the core already checked.
func (c *Claims) validate() *Rejection {
	for _, f := range [...]struct{ name, v string }{{"jti", c.ID}, {"client_id", c.ClientID}, {"sid", c.SessionID}} {
		if f.v == "" {
			return rejection(ReasonMissingClaim, "access token without %s", f.name)
		}
	}
	if c.IssuedAt == nil {
		return rejection(ReasonMissingClaim, "access token without iat")
	}
	if err := checkScope(c.Scope); err != nil {
		return err
	}
	if err := c.Act.validate(MaxDelegationDepth); err != nil {
		return err
	}
	return c.MayAct.validate(MaxDelegationDepth)
}

// SubjectClaims are the claims of a user (subject) token of a configured
// IdP or the sandbox dev IdP. Unknown claims are ignored.
type SubjectClaims struct {
	Issuer        string           `json:"iss"`
	Subject       string           `json:"sub"`
	Audience      jwt.Audience     `json:"aud,omitempty"`
	Expiry        *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore     *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt      *jwt.NumericDate `json:"iat,omitempty"`
	ID            string           `json:"jti,omitempty"`
	Email         string           `json:"email,omitempty"`
	EmailVerified bool             `json:"email_verified,omitempty"`
	Scope         string           `json:"scope,omitempty"`
	MayAct        *Actor           `json:"may_act,omitempty"`
}

// Scopes returns the scope claim split on spaces.
func (c *SubjectClaims) Scopes() []string { return splitScope(c.Scope) }

// Principal is the principal this token speaks for, "user:<sub>" (SPEC §3).
func (c *SubjectClaims) Principal() string { return "user:" + c.Subject }

// JoinScopes renders scopes as the space-separated scope claim after
// checking each is an RFC 6749 §3.3 scope-token.
func JoinScopes(scopes []string) (string, error) {
	for _, s := range scopes {
		if s == "" || strings.Contains(s, " ") {
			return "", fmt.Errorf("auth: scope %q is not a single scope token", s)
		}
		if err := checkScope(s); err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
	}
	return strings.Join(scopes, " "), nil
}

func splitScope(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// checkScope enforces RFC 6749 §3.3: scope = scope-token *( SP scope-token ),
// scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). One space between tokens, no
// leading or trailing space, so that Split and Join are inverses.
func checkScope(s string) *Rejection {
	if s == "" {
		return nil
	}
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return rejection(ReasonBadScope, "scope has an empty token or stray space")
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return rejection(ReasonBadScope, "scope token %q has a forbidden character", tok)
			}
		}
	}
	return nil
}
