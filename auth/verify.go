package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Limits of the verification core.
const (
	DefaultMaxTokenBytes = 8 << 10
	maxMaxTokenBytes     = 64 << 10
	DefaultLeeway        = 30 * time.Second
	MaxLeeway            = 2 * time.Minute
	maxKIDBytes          = 256
	maxClaimsDepth       = 16
)

// VerifyConfig configures the one JWT verification core every token kind
// goes through.
type VerifyConfig struct {
	Issuer   string // exact iss
	Audience string // exact aud
	// Typ is the required typ header, compared case-insensitively with any
	// "application/" prefix dropped (RFC 7515 §4.1.9, RFC 8725 §3.11).
	Typ string
	// AllowMissingTyp accepts tokens without a typ header (Kubernetes
	// service-account tokens carry none). A typ that is present must still
	// equal Typ.
	AllowMissingTyp bool
	// Algorithms is the pinned list of acceptable algs; default EdDSA only.
	// Only asymmetric signature algorithms are allowed.
	Algorithms  []jose.SignatureAlgorithm
	Leeway      time.Duration    // clock skew allowance; default 30s, at most 2m
	MaxLifetime time.Duration    // longest exp − iat accepted; default 24h
	MaxBytes    int              // token size limit; default 8 KiB, at most 64 KiB
	Clock       func() time.Time // default time.Now
}

// exp is always required: a flag whose zero value switched it off would be
// the wrong default, so VerifyConfig has none.

func (c *VerifyConfig) validate() error {
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("auth: VerifyConfig needs Issuer and Audience")
	}
	if c.Typ == "" {
		return errors.New("auth: VerifyConfig.Typ is required (RFC 8725 §3.11 explicit typing)")
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []jose.SignatureAlgorithm{jose.EdDSA}
	}
	for _, a := range c.Algorithms {
		if !asymmetricAlg(a) {
			return fmt.Errorf("auth: VerifyConfig.Algorithms: %q is not allowed; use EdDSA, ES256/384/512, RS256/384/512 or PS256/384/512", a)
		}
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		return fmt.Errorf("auth: VerifyConfig.Leeway %s must be between 0 and %s", c.Leeway, MaxLeeway)
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 24 * time.Hour
	}
	if c.MaxLifetime < 0 {
		return errors.New("auth: VerifyConfig.MaxLifetime must be positive")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxTokenBytes
	}
	if c.MaxBytes < 0 || c.MaxBytes > maxMaxTokenBytes {
		return fmt.Errorf("auth: VerifyConfig.MaxBytes must be between 1 and %d", maxMaxTokenBytes)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

// asymmetricAlg reports whether a is a signature algorithm tollgate accepts
// at all. RFC 8725 §3.1: none and the HMAC algorithms are never acceptable
// for tokens verified with published keys.
func asymmetricAlg(a jose.SignatureAlgorithm) bool {
	switch a {
	case jose.EdDSA, jose.ES256, jose.ES384, jose.ES512,
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return true
	}
	return false
}

// Verifier is the hardened JWT verification core. Use it through
// AccessVerifier, SubjectVerifier or JWTAttestor unless none fits.
type Verifier struct {
	cfg    VerifyConfig
	keys   KeySource
	what   string // "access token", … for public messages
	remedy string
}

// NewVerifier validates cfg and returns a verifier reading keys from keys.
func NewVerifier(cfg VerifyConfig, keys KeySource) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("auth: a KeySource is required")
	}
	return &Verifier{cfg: cfg, keys: keys, what: "token", remedy: "obtain a fresh token and retry"}, nil
}

// Verify checks token and decodes its claims into dest. Every failure is a
// *fault.Error (Unauthenticated, or Unavailable when keys cannot be read)
// whose cause is a *Rejection.
func (v *Verifier) Verify(ctx context.Context, token string, dest any) error {
	if r := v.verify(ctx, token, dest); r != nil {
		return v.refuse(r)
	}
	return nil
}

func (v *Verifier) refuse(r *Rejection) error {
	return refuse(r, fmt.Sprintf("the %s was refused (%s); %s. Nothing was charged or changed.", v.what, r.Reason, v.remedy))
}

func (v *Verifier) verify(ctx context.Context, token string, dest any) *Rejection {
	// Size first: nothing is decoded from an oversized token.
	if len(token) > v.cfg.MaxBytes {
		return rejection(ReasonOversized, "%d bytes, limit %d", len(token), v.cfg.MaxBytes)
	}
	// Compact serialization only (RFC 7515 §7.1): no JSON serialization with
	// unprotected headers or several signatures, no JWE (five parts).
	if strings.HasPrefix(strings.TrimSpace(token), "{") {
		return rejection(ReasonNotCompact, "JSON serialization")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return rejection(ReasonNotCompact, "%d parts, want 3", len(parts))
	}
	// Strict base64url: no padding, no whitespace, canonical trailing bits,
	// so one token has exactly one spelling (its hash identifies it).
	var dec [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || strings.ContainsAny(p, "\r\n") {
			return rejection(ReasonMalformed, "part %d is not canonical base64url", i+1)
		}
		dec[i] = b
	}
	headerJSON, payload, sig := dec[0], dec[1], dec[2]

	h, r := parseHeader(headerJSON)
	if r != nil {
		return r
	}
	alg, r := h.str("alg")
	if r != nil {
		return r
	}
	// RFC 8725 §3.1: pin the alg. none, None, HS256 and anything not
	// configured are refused before a key is even looked up.
	if !slices.Contains(v.cfg.Algorithms, jose.SignatureAlgorithm(alg)) {
		return rejection(ReasonAlgNotAllowed, "alg %.32q", alg)
	}
	// RFC 8725 §3.10: never follow jku/x5u (SSRF, attacker-chosen keys) and
	// never trust a key the token carries (jwk, x5c). b64 (RFC 7797) would
	// change what is signed.
	for _, name := range []string{"jku", "x5u", "jwk", "x5c", "b64"} {
		if _, ok := h[name]; ok {
			return rejection(ReasonForbiddenHeader, "%s header", name)
		}
	}
	// RFC 7515 §4.1.11: crit names extensions the recipient must
	// understand; tollgate understands none.
	if _, ok := h["crit"]; ok {
		return rejection(ReasonCritHeader, "crit header")
	}
	// RFC 8725 §3.11: explicit typing, so an ID token or an attestation
	// token cannot pass as an access token, nor the reverse.
	if typ, present, r := h.optStr("typ"); r != nil {
		return r
	} else if present && !sameTyp(typ, v.cfg.Typ) || !present && !v.cfg.AllowMissingTyp {
		return rejection(ReasonWrongTyp, "typ %.32q, want %q", typ, v.cfg.Typ)
	}
	kid, present, r := h.optStr("kid")
	if r != nil {
		return r
	}
	if !present || kid == "" {
		return rejection(ReasonMissingKID, "no kid header")
	}
	// RFC 8725 §3.10: the kid is attacker input; keep it to printable ASCII
	// of bounded length before any key source sees it.
	if !printableASCII(kid, maxKIDBytes) {
		return rejection(ReasonBadKID, "kid is not printable ASCII of at most %d bytes", maxKIDBytes)
	}
	if len(sig) == 0 {
		return rejection(ReasonEmptySignature, "no signature")
	}

	key, err := v.keys.Key(ctx, kid)
	if err != nil {
		var kr *Rejection
		if errors.As(err, &kr) {
			return kr
		}
		return &Rejection{Reason: ReasonKeysUnavailable, Err: err}
	}
	if key == nil {
		return rejection(ReasonUnknownKID, "key source returned no key")
	}
	// RFC 8725 §3.1: a key is used with exactly the algorithm it is for.
	if !keyFitsAlg(key, jose.SignatureAlgorithm(alg)) {
		return rejection(ReasonKeyAlgMismatch, "kid %s cannot verify %s", kid, alg)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil || len(jws.Signatures) != 1 {
		return &Rejection{Reason: ReasonMalformed, Detail: "go-jose refused the JWS", Err: err}
	}
	verified, err := jws.Verify(key)
	if err != nil || !bytes.Equal(verified, payload) {
		return &Rejection{Reason: ReasonBadSignature, Detail: "kid " + kid, Err: err}
	}
	return v.checkClaims(verified, dest)
}

// header is a decoded JOSE header with exact (case-sensitive) member names.
type header map[string]json.RawMessage

func parseHeader(b []byte) (header, *Rejection) {
	if err := scanJSON(b, 4); err != nil {
		return nil, jsonRejection(err, ReasonMalformed, "header")
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil || h == nil {
		return nil, rejection(ReasonMalformed, "header is not a JSON object")
	}
	return h, nil
}

// str returns a required string member; a missing alg is not an allowed alg.
func (h header) str(name string) (string, *Rejection) {
	s, present, r := h.optStr(name)
	if r != nil {
		return "", r
	}
	if !present {
		return "", rejection(ReasonAlgNotAllowed, "no %s header", name)
	}
	return s, nil
}

func (h header) optStr(name string) (string, bool, *Rejection) {
	raw, ok := h[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, rejection(ReasonMalformed, "%s header is not a string", name)
	}
	return s, true, nil
}

// jsonRejection maps a scanJSON error to its reason.
func jsonRejection(err error, otherwise Reason, where string) *Rejection {
	var dup *duplicateNameError
	if errors.As(err, &dup) {
		return &Rejection{Reason: ReasonDuplicateName, Detail: where, Err: err}
	}
	return &Rejection{Reason: otherwise, Detail: where, Err: err}
}

// sameTyp compares typ values as RFC 7515 §4.1.9 says: case-insensitively,
// with "application/" implied when absent.
func sameTyp(got, want string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		return strings.TrimPrefix(s, "application/")
	}
	return norm(got) == norm(want)
}

func printableASCII(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
