package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxNumericDate bounds NumericDate values (year 5138) so that no float to
// int conversion can overflow.
const maxNumericDate = 1e11

// checkClaims verifies the registered claims of a signature-checked payload
// and decodes it into dest.
func (v *Verifier) checkClaims(payload []byte, dest any) *Rejection {
	if err := scanJSON(payload, maxClaimsDepth); err != nil {
		return jsonRejection(err, ReasonMalformedClaims, "claims")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return rejection(ReasonMalformedClaims, "claims are not a JSON object")
	}

	// RFC 7519 §4.1.1, RFC 8725 §3.8: the issuer matches exactly.
	if iss, ok := claimString(m, "iss"); !ok || iss != v.cfg.Issuer {
		return rejection(ReasonWrongIssuer, "iss %.128q", iss)
	}
	// RFC 7519 §4.1.3, RFC 8725 §3.9: exact audience, no prefix or suffix
	// matching; an array must be exactly [audience], so a token minted for
	// several services cannot be replayed here.
	if !audienceIs(m["aud"], v.cfg.Audience) {
		return rejection(ReasonWrongAudience, "aud %.128s", m["aud"])
	}

	now := v.cfg.Clock()
	exp, present, r := numericDate(m, "exp")
	if r != nil {
		return r
	}
	// RFC 7519 §4.1.4: exp is required here, and must not have passed.
	if !present {
		return rejection(ReasonMissingExp, "no exp")
	}
	if !now.Before(exp.Add(v.cfg.Leeway)) {
		return rejection(ReasonExpired, "expired at %s", exp.UTC().Format(time.RFC3339))
	}
	nbf, hasNBF, r := numericDate(m, "nbf")
	if r != nil {
		return r
	}
	// RFC 7519 §4.1.5.
	if hasNBF && nbf.After(now.Add(v.cfg.Leeway)) {
		return rejection(ReasonNotYetValid, "nbf %s", nbf.UTC().Format(time.RFC3339))
	}
	iat, hasIAT, r := numericDate(m, "iat")
	if r != nil {
		return r
	}
	// RFC 7519 §4.1.6: a token issued in the future comes from a broken or
	// hostile clock.
	if hasIAT && iat.After(now.Add(v.cfg.Leeway)) {
		return rejection(ReasonIssuedInFuture, "iat %s", iat.UTC().Format(time.RFC3339))
	}
	start, slack := now, v.cfg.Leeway
	switch {
	case hasIAT:
		start, slack = iat, 0
	case hasNBF:
		start, slack = nbf, 0
	}
	if exp.Sub(start) > v.cfg.MaxLifetime+slack {
		return rejection(ReasonLifetimeTooLong, "lives %s, at most %s", exp.Sub(start), v.cfg.MaxLifetime)
	}
	if sub, ok := claimString(m, "sub"); !ok || sub == "" {
		return rejection(ReasonMissingClaim, "no sub")
	}
	if dest != nil {
		if err := json.Unmarshal(payload, dest); err != nil {
			return &Rejection{Reason: ReasonMalformedClaims, Detail: "claims do not fit", Err: err}
		}
	}
	return nil
}

func claimString(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func audienceIs(raw json.RawMessage, want string) bool {
	if raw == nil {
		return false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return len(many) == 1 && many[0] == want
	}
	return false
}

// numericDate reads an RFC 7519 §2 NumericDate: a JSON number (not a
// string) of seconds, possibly fractional, in [0, 1e11].
func numericDate(m map[string]json.RawMessage, name string) (time.Time, bool, *Rejection) {
	raw, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	if len(raw) == 0 || !(raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, true, rejection(ReasonMalformedClaims, "%s is not a non-negative number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f > maxNumericDate {
		return time.Time{}, true, rejection(ReasonMalformedClaims, "%s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// keyFitsAlg reports whether key may verify alg: the JWK's own alg, when
// set, must be alg, and the key type and curve must be the alg's.
// Symmetric keys never fit.
func keyFitsAlg(key *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if key.Algorithm != "" && key.Algorithm != string(alg) {
		return false
	}
	switch pub := key.Key.(type) {
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		case jose.ES512:
			return pub.Curve == elliptic.P521()
		}
	}
	return false
}
