package sessions

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Bounds on Tree, so a pathological delegation tree cannot exhaust memory.
const (
	maxTreeDepth = 32
	maxTreeNodes = 10000
)

// ref names a session: its principal and id.
type ref struct{ principal, sid string }

// Get returns the session sid of principal. A session of another principal
// is fault.NotFound, exactly as an id that does not exist. An expired
// session is returned with StatusExpired until its retention ends.
func (s *Store) Get(ctx context.Context, principal, sid string) (Session, error) {
	if !validPrincipal(principal) || !validID(sid) {
		return Session{}, errNotFound()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	found, err := s.load(ctx, []ref{{principal, sid}})
	if err != nil {
		return Session{}, err
	}
	if len(found) == 0 {
		return Session{}, errNotFound()
	}
	return found[0], nil
}

// Lookup finds a session by id alone, through the id index. It is for
// operators (`tollgate session show ID`); a caller acting for a principal
// uses Get, because a session id alone proves nothing.
func (s *Store) Lookup(ctx context.Context, sid string) (Session, error) {
	if !validID(sid) {
		return Session{}, errNotFound()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	principal, err := s.rdb.Get(ctx, s.keys.sid(sid)).Result()
	if errors.Is(err, redis.Nil) {
		return Session{}, errNotFound()
	}
	if err != nil {
		return Session{}, unavailable("lookup", err, msgReadDown)
	}
	found, err := s.load(ctx, []ref{{principal, sid}})
	if err != nil {
		return Session{}, err
	}
	if len(found) == 0 {
		return Session{}, errNotFound()
	}
	return found[0], nil
}

// List returns sessions whose records are still kept (Expires plus
// retention is after now), latest expiry first: one principal's, or every
// principal's when f.Principal is empty (operator use). A principal that is
// not well-formed has no sessions.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Session, error) {
	if f.Principal != "" && !validPrincipal(f.Principal) {
		return nil, nil
	}
	if !validStatusFilter(f.Status) {
		return nil, invalid("the status filter must be active, revoked, expired or empty.")
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, invalid("the list limit must not be negative.")
	case limit == 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	key := s.keys.global()
	if f.Principal != "" {
		key = s.keys.index(f.Principal)
	}
	const page = 256
	from := s.cfg.Now().UnixMilli()
	var out []Session
	for offset := int64(0); len(out) < limit; {
		ids, err := s.rdb.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{
			Max: "+inf", Min: "(" + strconv.FormatInt(from, 10), Offset: offset, Count: page,
		}).Result()
		if err != nil {
			return nil, unavailable("list", err, msgReadDown)
		}
		offset += int64(len(ids))
		refs, err := s.refs(ctx, f.Principal, ids)
		if err != nil {
			return nil, err
		}
		found, err := s.load(ctx, refs)
		if err != nil {
			return nil, err
		}
		for _, sess := range found {
			if f.Status == "" || sess.Status == f.Status {
				out = append(out, sess)
				if len(out) == limit {
					break
				}
			}
		}
		if len(ids) < page {
			break
		}
	}
	return out, nil
}

// Count returns how many sessions the global index holds: every session
// whose record is still kept, plus any past its purge deadline that no
// write has pruned yet. One ZCARD; for operators and measurements.
func (s *Store) Count(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	n, err := s.rdb.ZCard(ctx, s.keys.global()).Result()
	if err != nil {
		return 0, unavailable("count", err, msgReadDown)
	}
	return n, nil
}

// refs pairs session ids with their principal: the given one, or each id's
// entry in the id index. Ids whose entry is gone are dropped.
func (s *Store) refs(ctx context.Context, principal string, ids []string) ([]ref, error) {
	refs := make([]ref, 0, len(ids))
	if principal != "" {
		for _, id := range ids {
			refs = append(refs, ref{principal, id})
		}
		return refs, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.keys.sid(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("list: id index", err, msgReadDown)
	}
	for i, c := range cmds {
		p, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			// The id's record is gone; so is the session.
		case err != nil:
			return nil, unavailable("list: id index", err, msgReadDown)
		default:
			refs = append(refs, ref{p, ids[i]})
		}
	}
	return refs, nil
}

// Children returns the direct child sessions of principal's session sid,
// oldest first, including children under other principals. Children whose
// records are past retention are left out.
func (s *Store) Children(ctx context.Context, principal, sid string) ([]Session, error) {
	if _, err := s.Get(ctx, principal, sid); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	kids, err := s.kids(ctx, []ref{{principal, sid}})
	if err != nil {
		return nil, err
	}
	found, err := s.load(ctx, kids[0])
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, byCreated)
	return found, nil
}

// Tree returns principal's session sid with its descendants, each level
// oldest first, across principals. It stops at a depth of 32 and at 10,000
// sessions.
func (s *Store) Tree(ctx context.Context, principal, sid string) (*Node, error) {
	root, err := s.Get(ctx, principal, sid)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	top := &Node{Session: root}
	seen := map[string]bool{member(principal, sid): true}
	frontier := []*Node{top}
	for depth, count := 0, 1; depth < maxTreeDepth && len(frontier) > 0 && count < maxTreeNodes; depth++ {
		refs := make([]ref, len(frontier))
		for i, n := range frontier {
			refs[i] = ref{n.Principal, n.ID}
		}
		kids, err := s.kids(ctx, refs)
		if err != nil {
			return nil, err
		}
		var next []*Node
		for i, n := range frontier {
			var fresh []ref
			for _, k := range kids[i] {
				if m := member(k.principal, k.sid); !seen[m] && count < maxTreeNodes {
					seen[m] = true
					fresh = append(fresh, k)
					count++
				}
			}
			found, err := s.load(ctx, fresh)
			if err != nil {
				return nil, err
			}
			slices.SortFunc(found, byCreated)
			for _, c := range found {
				child := &Node{Session: c}
				n.Children = append(n.Children, child)
				next = append(next, child)
			}
		}
		frontier = next
	}
	return top, nil
}

// kids reads the kids sets of several sessions in one pipeline.
func (s *Store) kids(ctx context.Context, parents []ref) ([][]ref, error) {
	cmds := make([]*redis.StringSliceCmd, len(parents))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range parents {
			cmds[i] = p.SMembers(ctx, s.keys.kids(r.principal, r.sid))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("children", err, msgReadDown)
	}
	out := make([][]ref, len(parents))
	for i, c := range cmds {
		for _, m := range c.Val() {
			if p, id, ok := splitMember(m); ok {
				out[i] = append(out[i], ref{p, id})
			}
		}
	}
	return out, nil
}

// load reads sessions in one pipeline (HGETALL and SMEMBERS of each) and
// returns those that exist, in the order asked for.
func (s *Store) load(ctx context.Context, refs []ref) ([]Session, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	hs := make([]*redis.MapStringStringCmd, len(refs))
	ts := make([]*redis.StringSliceCmd, len(refs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			hs[i] = p.HGetAll(ctx, s.keys.sess(r.principal, r.sid))
			ts[i] = p.SMembers(ctx, s.keys.toks(r.principal, r.sid))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("read", err, msgReadDown)
	}
	now := s.cfg.Now()
	out := make([]Session, 0, len(refs))
	for i, r := range refs {
		sess, ok, err := decode(hs[i].Val(), ts[i].Val(), r.principal, now)
		if err != nil {
			return nil, internal("read", "session %s: %v", r.sid, err)
		}
		if ok && sess.ID == r.sid {
			out = append(out, sess)
		}
	}
	return out, nil
}

// byCreated orders sessions oldest first, then by id.
func byCreated(a, b Session) int {
	return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
}
