package sessions

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Field names of the session hash. They are readable on purpose: operators
// may HGETALL a session while debugging.
const (
	fPrincipal       = "principal"
	fActors          = "actors"
	fClientID        = "client_id"
	fScopes          = "scopes"
	fAuthzDetails    = "authorization_details"
	fParent          = "parent"
	fParentPrincipal = "parent_principal"
	fCreated         = "created_ms"
	fExpires         = "expires_ms"
	fStatus          = "status"
	fRevokedAt       = "revoked_at_ms"
	fRevokedReason   = "revoked_reason"
	fDescription     = "description"
	fID              = "id"
)

// encode returns the hash fields of a new session as field, value pairs.
func encode(s Session) ([]any, error) {
	actors, err := json.Marshal(nonNil(s.Actors))
	if err != nil {
		return nil, err
	}
	scopes, err := json.Marshal(nonNil(s.Scopes))
	if err != nil {
		return nil, err
	}
	f := []any{
		fID, s.ID,
		fPrincipal, s.Principal,
		fActors, string(actors),
		fScopes, string(scopes),
		fCreated, ms(s.Created),
		fExpires, ms(s.Expires),
		fStatus, string(s.Status),
	}
	for _, kv := range [][2]string{
		{fClientID, s.ClientID},
		{fAuthzDetails, string(s.AuthorizationDetails)},
		{fParent, s.Parent},
		{fParentPrincipal, s.ParentPrincipal},
		{fDescription, s.Description},
	} {
		if kv[1] != "" {
			f = append(f, kv[0], kv[1])
		}
	}
	return f, nil
}

// decode turns a session hash and its token set into a Session whose status
// is derived at now. ok is false when there is no visible session: no
// record, a record of another principal, or one still being created.
func decode(h map[string]string, toks []string, principal string, now time.Time) (s Session, ok bool, err error) {
	if len(h) == 0 || h[fPrincipal] != principal {
		return Session{}, false, nil
	}
	stored := Status(h[fStatus])
	switch stored {
	case StatusActive, StatusRevoked:
	case statusPending:
		return Session{}, false, nil
	default:
		return Session{}, false, fmt.Errorf("unknown status %q", stored)
	}
	s = Session{
		ID:              h[fID],
		Principal:       principal,
		ClientID:        h[fClientID],
		Parent:          h[fParent],
		ParentPrincipal: h[fParentPrincipal],
		RevokedReason:   h[fRevokedReason],
		Description:     h[fDescription],
	}
	if a := h[fAuthzDetails]; a != "" {
		s.AuthorizationDetails = json.RawMessage(a)
	}
	if err := json.Unmarshal([]byte(h[fActors]), &s.Actors); err != nil {
		return Session{}, false, fmt.Errorf("actors: %w", err)
	}
	if err := json.Unmarshal([]byte(h[fScopes]), &s.Scopes); err != nil {
		return Session{}, false, fmt.Errorf("scopes: %w", err)
	}
	if s.Created, err = fromMS(h[fCreated]); err != nil {
		return Session{}, false, fmt.Errorf("created: %w", err)
	}
	if s.Expires, err = fromMS(h[fExpires]); err != nil {
		return Session{}, false, fmt.Errorf("expires: %w", err)
	}
	if r := h[fRevokedAt]; r != "" {
		if s.RevokedAt, err = fromMS(r); err != nil {
			return Session{}, false, fmt.Errorf("revoked_at: %w", err)
		}
	}
	s.Status = derive(stored, s.Expires, now)
	if len(s.Actors) == 0 {
		s.Actors = nil
	}
	if len(s.Scopes) == 0 {
		s.Scopes = nil
	}
	if len(toks) > 0 {
		s.TokenHashes = slices.Sorted(slices.Values(toks))
	}
	return s, true, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ms is t in unix milliseconds, the unit of every time in Redis.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v string) (time.Time, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(n), nil
}
