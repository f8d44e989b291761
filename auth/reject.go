package auth

import (
	"errors"
	"fmt"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Reason is the stable, machine-readable cause of a rejected token or
// attestation. It travels as the Cause of a *fault.Error so that logs, the
// audit trail and tests can tell rejections apart without parsing English.
type Reason string

// Rejections of tokens and attestations, and refusals to sign.
const (
	ReasonOversized       Reason = "oversized"         // larger than the size limit
	ReasonNotCompact      Reason = "not_compact"       // JSON serialization, JWE, or not three parts
	ReasonMalformed       Reason = "malformed"         // bad base64url, JSON, or header member types
	ReasonDuplicateName   Reason = "duplicate_name"    // a JSON member name appears twice
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"   // alg not in the pinned list (none, HS256, …)
	ReasonForbiddenHeader Reason = "forbidden_header"  // jku, x5u, jwk, x5c, b64
	ReasonCritHeader      Reason = "crit_header"       // any crit header
	ReasonWrongTyp        Reason = "wrong_typ"         // typ is not the expected token type
	ReasonMissingKID      Reason = "missing_kid"       // no kid header
	ReasonBadKID          Reason = "bad_kid"           // kid not in the key source's format
	ReasonUnknownKID      Reason = "unknown_kid"       // no live key with that kid
	ReasonKeyAlgMismatch  Reason = "key_alg_mismatch"  // the key is not for this alg
	ReasonEmptySignature  Reason = "empty_signature"   // third part empty
	ReasonBadSignature    Reason = "bad_signature"     // signature does not verify
	ReasonMalformedClaims Reason = "malformed_claims"  // payload not a JSON object of the right shape
	ReasonWrongIssuer     Reason = "wrong_issuer"      // iss is not exactly the configured issuer
	ReasonWrongAudience   Reason = "wrong_audience"    // aud is not exactly the configured audience
	ReasonMissingExp      Reason = "missing_exp"       // no exp claim
	ReasonExpired         Reason = "expired"           // exp is past (beyond leeway)
	ReasonNotYetValid     Reason = "not_yet_valid"     // nbf is in the future (beyond leeway)
	ReasonIssuedInFuture  Reason = "issued_in_future"  // iat is in the future (beyond leeway)
	ReasonLifetimeTooLong Reason = "lifetime_too_long" // exp − iat exceeds the maximum lifetime
	ReasonMissingClaim    Reason = "missing_claim"     // a claim this token type requires is absent
	ReasonBadScope        Reason = "bad_scope"         // scope is not a list of RFC 6749 scope tokens
	ReasonBadAct          Reason = "bad_act"           // act chain too deep or with empty subjects
	ReasonBadSubject      Reason = "bad_subject"       // sub unusable as an identity
	ReasonKeysUnavailable Reason = "keys_unavailable"  // the key store could not be read
	ReasonMissingEvidence Reason = "missing_evidence"  // the attestor got nothing to attest
	ReasonPeerUnreadable  Reason = "peer_unreadable"   // /proc of the peer could not be read
	ReasonPeerNotAllowed  Reason = "peer_not_allowed"  // peer exe, hash or uid not on the allow-list
	ReasonPeerAmbiguous   Reason = "peer_ambiguous"    // setuid peer, deleted exe, or pid reused
	ReasonUnsupported     Reason = "unsupported"       // attestation not available on this platform
	ReasonKeyNotPublished Reason = "key_not_published" // signing refused: the key is not published until exp
	ReasonWrongTokenType  Reason = "wrong_token_type"  // signing refused: typ does not fit the namespace
	ReasonTooLongLived    Reason = "too_long_lived"    // signing refused: exp beyond the max lifetime
	ReasonNoExpToSign     Reason = "no_exp_to_sign"    // signing refused: the claims have no exp
)

// Rejection is the internal cause of a refused token or attestation.
// Detail is for logs only; it never reaches the caller.
type Rejection struct {
	Reason Reason
	Detail string
	Err    error
}

func (r *Rejection) Error() string {
	msg := "auth: " + string(r.Reason)
	if r.Detail != "" {
		msg += ": " + r.Detail
	}
	if r.Err != nil {
		msg += ": " + r.Err.Error()
	}
	return msg
}

func (r *Rejection) Unwrap() error { return r.Err }

// ReasonOf returns the Reason of the first *Rejection in err's chain, or ""
// when err is nil or carries none.
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func rejection(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// refuse wraps a rejection in the public error. Key-store outages are
// Unavailable (retrying may help); everything else is Unauthenticated.
func refuse(r *Rejection, public string) *fault.Error {
	code := fault.Unauthenticated
	if r.Reason == ReasonKeysUnavailable {
		code = fault.Unavailable
		public = "tollgate could not read its signing keys; nothing was charged or changed. Retry in a few seconds."
	}
	return fault.Wrap(r, code, public)
}
