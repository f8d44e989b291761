package sts

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

// maxFormBytes bounds a token endpoint body (tokens are at most 16 KiB each).
const maxFormBytes = 64 << 10

// Token serves POST /oauth/token.
func (s *STS) Token(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, e := ParseRequest(form)
	if e != nil {
		writeError(w, e)
		return
	}
	resp, err := s.Exchange(r.Context(), req)
	if err != nil {
		writeError(w, fromFault(err, ErrInvalidRequest))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readForm accepts only a form-encoded POST body; parameters in the query
// string are refused, because URLs end up in logs (RFC 6749 §3.2, §2.3.1).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Code: ErrInvalidRequest, Description: "use POST with a form-encoded body", Status: http.StatusMethodNotAllowed}
	}
	if r.URL.RawQuery != "" {
		return nil, oauthErr(ErrInvalidRequest, "parameters in the query string are refused; send them in the form body")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthErr(ErrInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(ErrInvalidRequest, "the form body is malformed or larger than %d bytes", maxFormBytes)
	}
	return r.PostForm, nil
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+e.Code+`"`)
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Introspection is the RFC 7662 response.
type Introspection struct {
	Active               bool                      `json:"active"`
	Scope                string                    `json:"scope,omitempty"`
	ClientID             string                    `json:"client_id,omitempty"`
	TokenType            string                    `json:"token_type,omitempty"`
	Exp                  int64                     `json:"exp,omitempty"`
	Iat                  int64                     `json:"iat,omitempty"`
	Nbf                  int64                     `json:"nbf,omitempty"`
	Sub                  string                    `json:"sub,omitempty"`
	Aud                  string                    `json:"aud,omitempty"`
	Iss                  string                    `json:"iss,omitempty"`
	Jti                  string                    `json:"jti,omitempty"`
	Act                  *auth.Actor               `json:"act,omitempty"`
	Sid                  string                    `json:"sid,omitempty"`
	ParentSid            string                    `json:"parent_sid,omitempty"`
	AuthorizationDetails auth.AuthorizationDetails `json:"authorization_details,omitempty"`
}

// Introspect serves POST /oauth/introspect (RFC 7662). The caller
// authenticates with a valid task token of its own (Bearer) and may only
// learn about tokens of the same principal; anything else is
// {"active":false}, indistinguishable from an invalid token (§2.2).
func (s *STS) Introspect(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(form["token"]) != 1 {
		writeError(w, oauthErr(ErrInvalidRequest, "exactly one token parameter is required"))
		return
	}
	caller, e := s.bearer(r)
	if e != nil {
		// RFC 7662 §2.2: a revoked or expired token is {"active": false}.
		// A caller asking about its own token, or one whose own token is
		// genuine but whose session was revoked, learns that and nothing
		// else; only a caller with no genuine token is refused.
		tok, _ := BearerToken(r)
		if e.Code != ErrUnavailable && tok != "" && (tok == form.Get("token") || s.genuine(r, tok)) {
			writeJSON(w, http.StatusOK, Introspection{Active: false})
			return
		}
		writeError(w, e)
		return
	}
	c, err := s.deps.Access.Verify(r.Context(), form.Get("token"))
	if err != nil || c.Subject != caller.Subject {
		writeJSON(w, http.StatusOK, Introspection{Active: false})
		return
	}
	if err := s.deps.Sessions.Check(r.Context(), c.Subject, c.SessionID, c.ID); err != nil {
		if fault.CodeOf(err) == fault.Unavailable {
			writeError(w, fromFault(err, ErrUnavailable))
			return
		}
		writeJSON(w, http.StatusOK, Introspection{Active: false})
		return
	}
	writeJSON(w, http.StatusOK, Introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer",
		Exp: c.Expiry.Time().Unix(), Iat: c.IssuedAt.Time().Unix(), Nbf: unix(c), Sub: c.Subject,
		Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, Act: c.Act, Sid: c.SessionID, ParentSid: c.ParentSessionID,
		AuthorizationDetails: c.AuthorizationDetails,
	})
}

// genuine reports whether tok is a token this server issued that is
// within its lifetime (signature, issuer, audience, expiry), whatever its
// session's state.
func (s *STS) genuine(r *http.Request, tok string) bool {
	_, err := s.deps.Access.Verify(r.Context(), tok)
	return err == nil
}

func unix(c *auth.Claims) int64 {
	if c.NotBefore == nil {
		return 0
	}
	return c.NotBefore.Time().Unix()
}

// Revoke serves POST /oauth/revoke (RFC 7009). Presenting a task token
// revokes its task session and every descendant (SPEC §5): holding the token
// is the authority to end the task. The answer is 200 whether or not the
// token was valid (§2.2), except when Redis is down (503, retry).
func (s *STS) Revoke(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(form["token"]) != 1 {
		writeError(w, oauthErr(ErrInvalidRequest, "exactly one token parameter is required"))
		return
	}
	if hint := form.Get("token_type_hint"); hint != "" && hint != "access_token" {
		writeError(w, oauthErr("unsupported_token_type", "only access tokens are issued here"))
		return
	}
	c, err := s.deps.Access.Verify(r.Context(), form.Get("token"))
	if err != nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if _, err := s.RevokeSession(r.Context(), c.Subject, c.SessionID, "revoked by token holder (RFC 7009)"); err != nil {
		if fault.CodeOf(err) == fault.Unavailable {
			writeError(w, fromFault(err, ErrUnavailable))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// RevokeSession revokes a session and its descendants and audits it.
func (s *STS) RevokeSession(ctx context.Context, principal, sid, reason string) ([]string, error) {
	ids, err := s.deps.Sessions.Revoke(ctx, principal, sid, reason)
	if err != nil {
		s.deps.Audit.WarnContext(ctx, "revoke failed", "principal", principal, "sid", sid, "err", err)
		return nil, err
	}
	s.deps.Audit.InfoContext(ctx, "revoke", "principal", principal, "sid", sid, "revoked", ids, "reason", reason)
	if _, err := s.deps.Trail.Append(context.WithoutCancel(ctx), sessions.Entry{Event: "revoke", Principal: principal, Session: sid,
		Decision: sessions.DecisionOK, Reason: trunc(reason), Detail: map[string]string{"revoked": strings.Join(ids, " ")}}); err != nil {
		s.deps.Audit.ErrorContext(ctx, "audit append failed", "err", err)
	}
	return ids, nil
}

// bearer verifies the request's own Authorization: Bearer task token.
func (s *STS) bearer(r *http.Request) (*auth.Claims, *Error) {
	tok, ok := BearerToken(r)
	if !ok {
		return nil, &Error{Code: ErrInvalidClient, Description: "send your own task token as Authorization: Bearer <token>", Status: http.StatusUnauthorized}
	}
	c, err := s.deps.Access.Verify(r.Context(), tok)
	if err != nil {
		return nil, &Error{Code: ErrInvalidClient, Description: fault.PublicOf(err), Status: http.StatusUnauthorized, Cause: err}
	}
	if err := s.deps.Sessions.Check(r.Context(), c.Subject, c.SessionID, c.ID); err != nil {
		if fault.CodeOf(err) == fault.Unavailable {
			return nil, fromFault(err, ErrUnavailable)
		}
		return nil, &Error{Code: ErrInvalidClient, Description: fault.PublicOf(err), Status: http.StatusUnauthorized, Cause: err}
	}
	return c, nil
}

// BearerToken extracts an RFC 6750 §2.1 bearer token from the Authorization header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// Metadata is the RFC 8414 authorization server metadata.
// It is public, like the resource metadata: browser-based clients may read
// it from any origin (no credentials are involved).
func (s *STS) Metadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.cfg.Issuer,
		"token_endpoint":                        s.cfg.Issuer + "/oauth/token",
		"jwks_uri":                              s.cfg.Issuer + "/.well-known/jwks.json",
		"introspection_endpoint":                s.cfg.Issuer + "/oauth/introspect",
		"revocation_endpoint":                   s.cfg.Issuer + "/oauth/revoke",
		"grant_types_supported":                 []string{GrantTokenExchange},
		"response_types_supported":              []string{},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"introspection_endpoint_auth_methods_supported": []string{"bearer"},
		"revocation_endpoint_auth_methods_supported":    []string{"none"},
		"scopes_supported":                      KnownScopes(),
		"authorization_details_types_supported": []string{auth.DetailResources, auth.DetailSpend},
		// No token_endpoint_auth_signing_alg_values_supported: it belongs to
		// the JWT client auth methods (private_key_jwt), and the token
		// endpoint offers only "none" (RFC 8414 §2).
	})
}

// JWKS serves the live public keys of every replica.
func (s *STS) JWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.deps.Signer.JWKS(r.Context())
	if err != nil {
		writeError(w, &Error{Code: ErrUnavailable, Description: "keys are unavailable; retry shortly", Status: http.StatusServiceUnavailable, Cause: err})
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=60")
	_ = json.NewEncoder(w).Encode(set)
}
