package sessions

import (
	"context"
	"fmt"
	"time"
)

// Revoke marks the session and every descendant session revoked before it
// returns, and returns the ids of all of them (already revoked ones
// included). The subtree under principal is revoked in one Lua script, so
// no Check on any of it passes once the script has run; descendants under
// other principals live on other Cluster slots and are revoked next, each
// subtree with the same script, before Revoke returns.
//
// Revoke is idempotent: a session keeps the time and reason of its first
// revocation. On fault.Unavailable the cascade may be incomplete and the
// ids returned are those revoked so far; call it again.
func (s *Store) Revoke(ctx context.Context, principal, sid, reason string) ([]string, error) {
	if !validPrincipal(principal) || !validID(sid) {
		return nil, errNotFound()
	}
	if reason == "" {
		reason = "revoked"
	}
	if !printable(reason, maxReason) {
		return nil, invalid("the revocation reason must be at most %d bytes of printable UTF-8; nothing was revoked.", maxReason)
	}
	now := ms(s.cfg.Now())
	found, ids, foreign, err := s.revokeSubtree(ctx, principal, sid, reason, now)
	if err != nil {
		return nil, unavailable("revoke", err, msgRevokeDown)
	}
	if !found {
		return nil, errNotFound()
	}
	done := make(map[string]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	seen := map[string]bool{member(principal, sid): true}
	queue := make([]string, 0, len(foreign))
	push := func(members []string) {
		for _, m := range members {
			if !seen[m] {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
	push(foreign)
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		p, c, ok := splitMember(m)
		if !ok {
			continue
		}
		found, more, foreign, err := s.revokeSubtree(ctx, p, c, reason, now)
		if err != nil {
			return ids, unavailable("revoke: cascade to "+m, err, msgRevokeDown)
		}
		if !found {
			continue // its record is past retention; nothing left to revoke
		}
		for _, id := range more {
			if !done[id] {
				done[id] = true
				ids = append(ids, id)
			}
		}
		push(foreign)
	}
	return ids, nil
}

// revokeSubtree runs revokeLua on one principal's subtree rooted at sid.
func (s *Store) revokeSubtree(ctx context.Context, principal, sid, reason string, now int64) (found bool, ids, foreign []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.scripts.revoke.Run(ctx, s.rdb, []string{s.keys.sess(principal, sid)},
		s.keys.base(principal), principal, sid, now, reason).Slice()
	if err != nil {
		return false, nil, nil, err
	}
	if len(res) != 3 {
		return false, nil, nil, fmt.Errorf("revoke script replied %v", res)
	}
	code, ok := res[0].(int64)
	if !ok {
		return false, nil, nil, fmt.Errorf("revoke script replied %v", res)
	}
	switch code {
	case codeNotFound:
		return false, nil, nil, nil
	case codeOK:
	default:
		return false, nil, nil, fmt.Errorf("revoke script replied %d", code)
	}
	if ids, err = stringList(res[1]); err != nil {
		return false, nil, nil, err
	}
	if foreign, err = stringList(res[2]); err != nil {
		return false, nil, nil, err
	}
	return true, ids, foreign, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list, got %T", v)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		str, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("expected a string, got %T", e)
		}
		out = append(out, str)
	}
	return out, nil
}

// RevokeJTI puts one token id of the session on the deny-list until the
// token's exp (plus Config.Skew), so that Check refuses that token while
// the session and its other tokens stay active. It is idempotent.
func (s *Store) RevokeJTI(ctx context.Context, principal, sid, jti string, exp time.Time) error {
	if !validPrincipal(principal) || !validID(sid) {
		return errNotFound()
	}
	if !validJTI(jti) {
		return invalid("the jti must be 1-%d bytes of printable UTF-8; nothing was revoked.", maxJTI)
	}
	ttl := max(exp.Sub(s.cfg.Now()), 0) + s.cfg.Skew
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	code, err := s.scripts.revokeJTI.Run(ctx, s.rdb,
		[]string{s.keys.sess(principal, sid), s.keys.jti(principal, jti)},
		principal, sid, max(ttl.Milliseconds(), 1)).Int64()
	if err != nil {
		return unavailable("revoke jti", err, msgRevokeDown)
	}
	switch code {
	case codeOK:
		return nil
	case codeNotFound:
		return errNotFound()
	default:
		return internal("revoke jti", "script replied %d", code)
	}
}
