package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fuse"
)

const maxAuthzDetails = 64 << 10

// Create stores a new active session and returns it as stored (id assigned
// when in.ID is empty, Created defaulted to now, times cut to milliseconds).
//
// A session with a Parent is refused unless that parent exists for
// ParentPrincipal, is active and unexpired; the check and the link into the
// parent's kids set are one atomic step (one Lua script when both share a
// principal), so no child appears under a parent whose Revoke has returned.
// A parent under another principal is on another Cluster slot: the child is
// written pending, linked by a script on the parent's slot, then activated
// only if no revocation reached it meanwhile.
//
// The record is kept until Expires plus the retention window.
func (s *Store) Create(ctx context.Context, in Session) (Session, error) {
	sess, _, err := s.create(ctx, in, nil, Entry{})
	return sess, err
}

// NewID draws a session id, for a caller that must name the session before
// it exists (the STS signs the first token, then creates the session with
// its hash).
func (s *Store) NewID() string { return s.cfg.NewID() }

// CreateAudited is Create with e appended to the principal's audit chain in
// the same script as the session itself (one round trip, after the id's
// reservation): the session exists if and only if its entry does. e's
// Principal must be the session's.
func (s *Store) CreateAudited(ctx context.Context, in Session, audit *Audit, e Entry) (Session, Entry, error) {
	if audit == nil {
		return Session{}, Entry{}, errors.New("sessions: CreateAudited needs the audit trail")
	}
	if e.Principal != in.Principal {
		return Session{}, Entry{}, invalid("the audit entry of a new session must name its principal; nothing was created.")
	}
	return s.create(ctx, in, audit, e)
}

func (s *Store) create(ctx context.Context, in Session, audit *Audit, e Entry) (Session, Entry, error) {
	now := s.cfg.Now()
	sess, err := s.prepare(in, now)
	if err != nil {
		return Session{}, Entry{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	deadline := sess.Expires.Add(s.cfg.Retention)
	ttl := deadline.Sub(now)
	foreignParent := sess.Parent != "" && sess.ParentPrincipal != sess.Principal
	stored := sess
	if foreignParent {
		stored.Status = statusPending
	}
	fields, err := encode(stored)
	if err != nil {
		return Session{}, Entry{}, internal("create", "encode: %v", err)
	}

	// Reserve the id across all principals first: Lookup(sid) must name one
	// principal only. The global index is written in the same pipeline
	// (one round trip; an id that turns out taken leaves at most a later
	// purge deadline there, which only delays its purge).
	var reserve *redis.BoolCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		reserve = p.SetNX(ctx, s.keys.sid(sess.ID), sess.Principal, ttl)
		p.ZRemRangeByScore(ctx, s.keys.global(), "-inf", strconv.FormatInt(ms(now), 10))
		p.ZAddGT(ctx, s.keys.global(), redis.Z{Score: float64(ms(deadline)), Member: sess.ID})
		return nil
	})
	if err != nil {
		if reserve != nil && reserve.Err() == nil && reserve.Val() {
			s.unreserve(sess.ID)
		}
		return Session{}, Entry{}, unavailable("create: reserve id", err, msgWriteDown)
	}
	if !reserve.Val() {
		return Session{}, Entry{}, invalid("session id %q is already in use; nothing was created. Leave the id empty to have one assigned.", sess.ID)
	}

	keys, args := s.createCall(sess, fields, now, deadline, foreignParent)
	var code int64
	if audit == nil {
		code, err = s.scripts.create.Run(ctx, s.rdb, keys, args...).Int64()
	} else {
		code, e, err = s.createFused(ctx, audit, e, keys, args)
	}
	if err != nil {
		return Session{}, Entry{}, unavailable("create", err, msgWriteDown)
	}
	switch code {
	case codeOK:
	case codeExists:
		return Session{}, Entry{}, invalid("session id %q is already in use; nothing was created. Leave the id empty to have one assigned.", sess.ID)
	case codeNotFound, codeRevoked, codeExpired:
		s.unreserve(sess.ID)
		return Session{}, Entry{}, parentError(code)
	default:
		return Session{}, Entry{}, internal("create", "script replied %d", code)
	}
	if !foreignParent {
		return sess, e, nil
	}

	code, err = s.scripts.link.Run(ctx, s.rdb,
		[]string{s.keys.sess(sess.ParentPrincipal, sess.Parent), s.keys.kids(sess.ParentPrincipal, sess.Parent)},
		ms(now), sess.ParentPrincipal, member(sess.Principal, sess.ID)).Int64()
	if err != nil {
		// The child stays pending: it never passes Check and expires by TTL.
		return Session{}, Entry{}, unavailable("create: link to parent", err, msgWriteDown)
	}
	switch code {
	case codeOK:
	case codeNotFound, codeRevoked, codeExpired:
		s.discard(sess.Principal, sess.ID)
		return Session{}, Entry{}, parentError(code)
	default:
		return Session{}, Entry{}, internal("create: link", "script replied %d", code)
	}
	code, err = s.scripts.activate.Run(ctx, s.rdb, []string{s.keys.sess(sess.Principal, sess.ID)}, sess.Principal).Int64()
	if err != nil {
		return Session{}, Entry{}, unavailable("create: activate", err, msgWriteDown)
	}
	switch code {
	case codeOK:
		return sess, e, nil
	case codeRevoked:
		// The parent's revocation cascaded here between link and activate.
		return Session{}, Entry{}, parentError(codeRevoked)
	default:
		return Session{}, Entry{}, internal("create: activate", "script replied %d", code)
	}
}

// createFused runs createLua and e's append as one script.
func (s *Store) createFused(ctx context.Context, audit *Audit, e Entry, keys []string, args []any) (int64, Entry, error) {
	f, err := audit.Fused(ctx, e, s.rdb, fuse.Step{Name: "session_create", Body: parentStateLua + createLua,
		Continue: "r == " + strconv.Itoa(codeOK), Keys: keys, Args: args})
	if err != nil {
		return 0, Entry{}, err
	}
	if f.Replayed {
		return codeOK, f.Entry, nil
	}
	code, ok := f.Steps.Replies[0].(int64)
	if !ok {
		return 0, Entry{}, fmt.Errorf("create replied %v", f.Steps.Replies[0])
	}
	return code, f.Entry, nil
}

// createCall returns the keys and arguments of createLua for sess.
func (s *Store) createCall(sess Session, fields []any, now, deadline time.Time, foreignParent bool) ([]string, []any) {
	keys := []string{
		s.keys.sess(sess.Principal, sess.ID),
		s.keys.toks(sess.Principal, sess.ID),
		s.keys.index(sess.Principal),
	}
	if sess.Parent != "" && !foreignParent {
		keys = append(keys, s.keys.sess(sess.Principal, sess.Parent), s.keys.kids(sess.Principal, sess.Parent))
	}
	args := []any{ms(now), deadline.Sub(now).Milliseconds(), ms(deadline), sess.ID, sess.Principal,
		member(sess.Principal, sess.ID), len(fields)}
	args = append(args, fields...)
	for _, h := range sess.TokenHashes {
		args = append(args, h)
	}
	return keys, args
}

// unreserve releases an id reserved by a Create that stored nothing. Best
// effort: the reservation expires on its own.
func (s *Store) unreserve(sid string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.sid(sid))
		p.ZRem(ctx, s.keys.global(), sid)
		return nil
	})
}

// discard removes a pending session whose parent refused it. Best effort:
// a pending session never passes Check and expires on its own.
func (s *Store) discard(principal, sid string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.sess(principal, sid))
		p.Del(ctx, s.keys.toks(principal, sid))
		p.ZRem(ctx, s.keys.index(principal), sid)
		return nil
	})
	s.unreserve(sid)
}

// AddToken records the SHA-256 (HashToken) of a token issued for an active
// session and extends the session to the token's exp when that is later:
// a session lives as long as its longest-lived token. It is idempotent.
// A revoked or expired session gets no new tokens.
func (s *Store) AddToken(ctx context.Context, principal, sid, tokenHash string, exp time.Time) error {
	if !validPrincipal(principal) || !validID(sid) {
		return errNotFound()
	}
	if !validTokenHash(tokenHash) {
		return invalid("the token hash must be the lowercase hex SHA-256 of the token (sessions.HashToken); nothing was recorded.")
	}
	now := s.cfg.Now()
	if !exp.After(now) {
		return invalid("the token's exp is not in the future; nothing was recorded.")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.scripts.addToken.Run(ctx, s.rdb,
		[]string{s.keys.sess(principal, sid), s.keys.toks(principal, sid), s.keys.kids(principal, sid), s.keys.index(principal)},
		ms(now), principal, sid, tokenHash, ms(exp), s.cfg.Retention.Milliseconds()).Int64Slice()
	if err != nil {
		return unavailable("add token", err, msgWriteDown)
	}
	if len(res) != 2 {
		return internal("add token", "script replied %v", res)
	}
	switch res[0] {
	case codeOK:
	case codeNotFound:
		return errNotFound()
	case codeRevoked:
		return errRevoked()
	case codeExpired:
		return errExpired()
	default:
		return internal("add token", "script replied %v", res)
	}
	ttl := res[1]
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "PEXPIRE", s.keys.sid(sid), ttl, "GT")
		p.ZAddGT(ctx, s.keys.global(), redis.Z{Score: float64(ms(now) + ttl), Member: sid})
		return nil
	})
	if err != nil {
		return unavailable("add token: index", err, msgWriteDown)
	}
	return nil
}

// prepare validates a session for Create and normalises it: id, defaults,
// millisecond times, compact JSON, copied slices.
func (s *Store) prepare(in Session, now time.Time) (Session, error) {
	if !validPrincipal(in.Principal) {
		return Session{}, invalid("the principal must be 1-%d bytes of printable UTF-8; nothing was created.", maxPrincipal)
	}
	out := Session{
		ID:              in.ID,
		Principal:       in.Principal,
		ClientID:        in.ClientID,
		Parent:          in.Parent,
		ParentPrincipal: in.ParentPrincipal,
		Created:         in.Created,
		Expires:         in.Expires,
		Status:          StatusActive,
		Description:     in.Description,
	}
	if out.ID == "" {
		out.ID = s.cfg.NewID()
		if !validID(out.ID) {
			return Session{}, internal("create", "Config.NewID returned %q, which is not a valid session id", out.ID)
		}
	} else if !validID(out.ID) {
		return Session{}, invalid("a session id must match [A-Za-z0-9._~-]{1,%d}; nothing was created.", maxID)
	}
	for _, a := range in.Actors {
		if !printable(a, maxListItem) {
			return Session{}, invalid("each actor must be 1-%d bytes of printable UTF-8; nothing was created.", maxListItem)
		}
	}
	for _, sc := range in.Scopes {
		if !printable(sc, maxListItem) || strings.ContainsRune(sc, ' ') {
			return Session{}, invalid("each scope must be one non-empty scope token without spaces; nothing was created.")
		}
	}
	out.Actors = slices.Clone(in.Actors)
	out.Scopes = slices.Clone(in.Scopes)
	if !optionalText(out.ClientID, maxListItem) {
		return Session{}, invalid("the client id must be at most %d bytes of printable UTF-8; nothing was created.", maxListItem)
	}
	if len(in.AuthorizationDetails) > 0 {
		var buf bytes.Buffer
		if len(in.AuthorizationDetails) > maxAuthzDetails || json.Compact(&buf, in.AuthorizationDetails) != nil {
			return Session{}, invalid("authorization_details must be valid JSON of at most %d bytes; nothing was created.", maxAuthzDetails)
		}
		out.AuthorizationDetails = json.RawMessage(buf.Bytes())
	}
	switch {
	case out.Parent == "" && out.ParentPrincipal != "":
		return Session{}, invalid("a parent principal needs a parent session id; nothing was created.")
	case out.Parent != "" && !validID(out.Parent):
		return Session{}, invalid("the parent session id must match [A-Za-z0-9._~-]{1,%d}; nothing was created.", maxID)
	case out.Parent != "" && out.Parent == out.ID:
		return Session{}, invalid("a session cannot be its own parent; nothing was created.")
	case out.Parent != "" && out.ParentPrincipal == "":
		out.ParentPrincipal = out.Principal
	}
	if out.ParentPrincipal != "" && !validPrincipal(out.ParentPrincipal) {
		return Session{}, invalid("the parent principal must be 1-%d bytes of printable UTF-8; nothing was created.", maxPrincipal)
	}
	if in.Status != "" && in.Status != StatusActive {
		return Session{}, invalid("a new session is always active; leave Status empty. Nothing was created.")
	}
	if !in.RevokedAt.IsZero() || in.RevokedReason != "" {
		return Session{}, invalid("a new session cannot carry a revocation; nothing was created.")
	}
	if !validDescription(out.Description) {
		return Session{}, invalid("the description must be UTF-8 text of at most %d bytes; nothing was created.", maxDescription)
	}
	if out.Created.IsZero() {
		out.Created = now
	}
	out.Created = time.UnixMilli(ms(out.Created))
	if out.Expires.IsZero() {
		return Session{}, invalid("a session needs an expiry (the exp of its first token); nothing was created.")
	}
	out.Expires = time.UnixMilli(ms(out.Expires))
	if !out.Expires.After(now) || !out.Expires.After(out.Created) {
		return Session{}, invalid("the session's expiry must be after its creation and in the future; nothing was created.")
	}
	for _, h := range in.TokenHashes {
		if !validTokenHash(h) {
			return Session{}, invalid("each token hash must be the lowercase hex SHA-256 of a token (sessions.HashToken); nothing was created.")
		}
	}
	if len(in.TokenHashes) > 0 {
		out.TokenHashes = slices.Compact(slices.Sorted(slices.Values(in.TokenHashes)))
	}
	return out, nil
}
