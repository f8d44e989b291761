package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// exchangeResponse is the RFC 8693 §2.2.1 response, plus tollgate's
// session_id.
type exchangeResponse struct {
	AccessToken          string          `json:"access_token"`
	IssuedTokenType      string          `json:"issued_token_type"`
	TokenType            string          `json:"token_type"`
	ExpiresIn            int64           `json:"expires_in"`
	Scope                string          `json:"scope"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
	SessionID            string          `json:"session_id"`
}

// Grant is what an exchange issued, as the server reported it: the scope
// may be narrower than asked when the request named none.
type Grant struct {
	Scope                []string
	SessionID            string
	Expiry               time.Time
	AuthorizationDetails json.RawMessage
}

// GrantOf reads the Grant of a token a TokenSource returned.
func GrantOf(t *oauth2.Token) Grant {
	g := Grant{Expiry: t.Expiry}
	if s, ok := t.Extra("scope").(string); ok {
		g.Scope = strings.Fields(s)
	}
	g.SessionID, _ = t.Extra("session_id").(string)
	if d, ok := t.Extra("authorization_details").(json.RawMessage); ok {
		g.AuthorizationDetails = d
	}
	return g
}

// subjectToken is what the exchange sends as its subject.
// subjectToken is the exchange's subject. refresh: it is this
// TokenSource's own task token, sent to be refreshed in its session (the
// request then names no scope or details: the session keeps its own).
type subjectToken struct {
	token, typ string
	refresh    bool
}

// exchange runs one RFC 8693 exchange. The form is built here, once; the
// tokens in it are never logged or put into an error.
func (ts *TokenSource) exchange(ctx context.Context, sub subjectToken, now time.Time) (*oauth2.Token, error) {
	actor, err := ts.cfg.Actor.Attestation(ctx)
	if err != nil {
		if e := asError(err); e != nil {
			return nil, e
		}
		return nil, &Error{Op: "attest", Code: NoAttestation, Err: err}
	}
	form := url.Values{"grant_type": {grantTokenExchange}}
	if sub.token == "" {
		// Self mode: the agent's own attestation is the subject, with no
		// actor (one token cannot be both).
		form.Set("subject_token", actor)
		form.Set("subject_token_type", TokenTypeJWT)
	} else {
		form.Set("subject_token", sub.token)
		form.Set("subject_token_type", sub.typ)
		form.Set("actor_token", actor)
		form.Set("actor_token_type", TokenTypeJWT)
	}
	if ts.cfg.Scope != nil && !sub.refresh {
		form.Set("scope", strings.Join(ts.cfg.Scope, " "))
	}
	if ts.details != "" && !sub.refresh {
		form.Set("authorization_details", ts.details)
	}
	if ts.cfg.Resource != "" {
		form.Set("resource", ts.cfg.Resource)
	}
	if ts.cfg.Description != "" {
		form.Set("description", ts.cfg.Description)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Op: ts.op, Code: Misconfigured, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ts.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, &Error{Op: ts.op, Code: Unreachable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, oauthError(ts.op, resp)
	}
	var r exchangeResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r); err != nil {
		return nil, &Error{Op: ts.op, Code: BadResponse, Status: resp.StatusCode, Description: "the token endpoint's answer is not JSON", Err: err}
	}
	switch {
	case r.AccessToken == "":
		return nil, &Error{Op: ts.op, Code: BadResponse, Status: resp.StatusCode, Description: "the answer has no access_token"}
	case !strings.EqualFold(r.TokenType, "Bearer"):
		return nil, &Error{Op: ts.op, Code: BadResponse, Status: resp.StatusCode, Description: fmt.Sprintf("token_type %q is not Bearer", r.TokenType)}
	case r.ExpiresIn <= 0:
		return nil, &Error{Op: ts.op, Code: BadResponse, Status: resp.StatusCode, Description: "the answer has no positive expires_in"}
	}
	// The expiry counts from before the request was sent: never later than
	// the server's.
	t := &oauth2.Token{AccessToken: r.AccessToken, TokenType: "Bearer", Expiry: now.Add(time.Duration(r.ExpiresIn) * time.Second), ExpiresIn: r.ExpiresIn}
	return t.WithExtra(map[string]any{
		"issued_token_type":     r.IssuedTokenType,
		"scope":                 r.Scope,
		"session_id":            r.SessionID,
		"authorization_details": r.AuthorizationDetails,
	}), nil
}
