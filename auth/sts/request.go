package sts

import (
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/auth"
)

// Token type identifiers (RFC 8693 §3).
const (
	GrantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// Request is a parsed token-exchange request.
type Request struct {
	SubjectToken     string
	SubjectTokenType string
	ActorToken       string
	ActorTokenType   string
	Scopes           []string // nil when the request names none
	Resources        []string // resource and audience values
	Details          auth.AuthorizationDetails
	HasDetails       bool
	Impersonate      bool
	Description      string
}

const (
	maxTokenParam = 16 << 10
	maxScopeParam = 2 << 10
	maxDescParam  = 200
)

// singleParams may appear at most once (RFC 6749 §3.2); resource and
// audience may repeat (RFC 8693 §2.1).
var singleParams = []string{
	"grant_type", "subject_token", "subject_token_type", "actor_token", "actor_token_type",
	"scope", "requested_token_type", "authorization_details", "impersonate", "description",
}

// ParseRequest validates a form-encoded token-exchange request. Unknown
// parameters are ignored (RFC 6749 §3.2); everything else is checked here,
// once, before any token is looked at.
func ParseRequest(form url.Values) (*Request, *Error) {
	for _, p := range singleParams {
		if len(form[p]) > 1 {
			return nil, oauthErr(ErrInvalidRequest, "parameter %s appears more than once", p)
		}
	}
	if gt := form.Get("grant_type"); gt != GrantTokenExchange {
		if gt == "" {
			return nil, oauthErr(ErrInvalidRequest, "grant_type is required; use %s", GrantTokenExchange)
		}
		return nil, oauthErr(ErrUnsupportedGrantType, "grant_type %q is not supported; use %s", trunc(gt), GrantTokenExchange)
	}
	r := &Request{
		SubjectToken:     form.Get("subject_token"),
		SubjectTokenType: form.Get("subject_token_type"),
		ActorToken:       form.Get("actor_token"),
		ActorTokenType:   form.Get("actor_token_type"),
	}
	if r.SubjectToken == "" || r.SubjectTokenType == "" {
		return nil, oauthErr(ErrInvalidRequest, "subject_token and subject_token_type are required")
	}
	if len(r.SubjectToken) > maxTokenParam || len(r.ActorToken) > maxTokenParam {
		return nil, oauthErr(ErrInvalidRequest, "a token parameter is larger than %d bytes", maxTokenParam)
	}
	switch r.SubjectTokenType {
	case TokenTypeAccessToken, TokenTypeIDToken, TokenTypeJWT:
	default:
		return nil, oauthErr(ErrInvalidRequest, "subject_token_type %q is not supported; use %s, %s or %s", trunc(r.SubjectTokenType), TokenTypeIDToken, TokenTypeAccessToken, TokenTypeJWT)
	}
	switch {
	case r.ActorToken == "" && r.ActorTokenType != "":
		return nil, oauthErr(ErrInvalidRequest, "actor_token_type without actor_token")
	case r.ActorToken != "" && r.ActorTokenType != TokenTypeJWT:
		return nil, oauthErr(ErrInvalidRequest, "actor_token_type must be %s (a workload attestation)", TokenTypeJWT)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, oauthErr(ErrInvalidRequest, "requested_token_type %q is not supported; only %s is issued", trunc(rt), TokenTypeAccessToken)
	}
	if form.Has("scope") {
		s := form.Get("scope")
		if len(s) > maxScopeParam {
			return nil, oauthErr(ErrInvalidScope, "scope is longer than %d bytes", maxScopeParam)
		}
		for _, tok := range strings.Split(s, " ") {
			if tok == "" {
				continue
			}
			if !scopeToken(tok) {
				return nil, oauthErr(ErrInvalidScope, "scope %q is not an RFC 6749 scope token", trunc(tok))
			}
			r.Scopes = appendUnique(r.Scopes, tok)
		}
		if r.Scopes == nil {
			r.Scopes = []string{}
		}
	}
	r.Resources = append(append([]string{}, form["resource"]...), form["audience"]...)
	if len(r.Resources) > 8 {
		return nil, oauthErr(ErrInvalidTarget, "too many resource/audience values")
	}
	if ad := form.Get("authorization_details"); ad != "" {
		d, err := auth.ParseAuthorizationDetails([]byte(ad))
		if err != nil {
			return nil, fromFault(err, ErrInvalidRequest)
		}
		r.Details, r.HasDetails = d, true
	}
	switch form.Get("impersonate") {
	case "", "false":
	case "true":
		r.Impersonate = true
	default:
		return nil, oauthErr(ErrInvalidRequest, "impersonate must be true or false")
	}
	r.Description = form.Get("description")
	if len(r.Description) > maxDescParam || strings.ContainsAny(r.Description, "\x00\r\n") {
		return nil, oauthErr(ErrInvalidRequest, "description must be one line of at most %d bytes", maxDescParam)
	}
	return r, nil
}

// scopeToken is RFC 6749 §3.3's scope-token: %x21 / %x23-5B / %x5D-7E.
func scopeToken(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
