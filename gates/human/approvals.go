package human

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/limits"
)

// maxList bounds how many approvals List returns.
const maxList = 100

// Approvals keeps approvals in Redis. It is safe for concurrent use; every
// replica may hold its own Approvals on the same Redis.
//
// An approval id is an unguessable handle, not authority. Decide takes the
// principal the caller authenticated (the page's sign-in, the CLI's
// operator identity) and refuses anyone else; Consume takes the binding of
// the agent's call and refuses any other.
type Approvals struct {
	rdb     redis.UniversalClient
	cfg     ApprovalsConfig
	keys    keyspace
	scripts scripts
}

// NewApprovals returns Approvals on rdb. cfg is validated; zero fields take
// their defaults.
func NewApprovals(rdb redis.UniversalClient, cfg ApprovalsConfig) (*Approvals, error) {
	if rdb == nil {
		return nil, errNoClient
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Approvals{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}, scripts: newScripts()}, nil
}

// Create records a pending approval of a.Binding, a.Kind, a.Summary and
// a.Fields, and returns it with its new id (ApprovalsConfig.NewID), status,
// creation and expiry (now + TTL). It ignores the other fields of a. One
// Redis round trip. Refusals: fault.InvalidArgument, fault.Unavailable.
func (s *Approvals) Create(ctx context.Context, a Approval) (Approval, error) {
	if err := a.validate(); err != nil {
		return Approval{}, err
	}
	now := s.cfg.Now()
	// Times are kept to the millisecond, as they are read back.
	out := Approval{ID: s.cfg.NewID(), Binding: a.Binding, Kind: a.Kind, Summary: a.Summary, Status: StatusPending,
		Created: time.UnixMilli(ms(now)).UTC(), Expires: time.UnixMilli(ms(now.Add(s.cfg.TTL))).UTC()}
	if !validID(out.ID) {
		return Approval{}, internal("create", "ApprovalsConfig.NewID returned %q, which is not a valid approval id", out.ID)
	}
	if len(a.Fields) > 0 {
		out.Fields = make(map[string]string, len(a.Fields))
		for n, v := range a.Fields {
			out.Fields[n] = v
		}
	}
	fields, err := out.encode()
	if err != nil {
		return Approval{}, internal("create", "%v", err)
	}
	keep := s.cfg.TTL + s.cfg.Retention
	p := a.Binding.Principal
	args := append([]any{ms(now), ms(now.Add(keep)), keep.Milliseconds(), out.ID, s.cfg.MaxPending, ms(now.Add(s.cfg.Retention))}, fields...)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var owner *redis.BoolCmd
	res, err := runWith(ctx, s.rdb, s.scripts.create, []string{s.keys.approval(p, out.ID), s.keys.approvals(p)}, args,
		func(pl redis.Pipeliner) { owner = pl.SetNX(ctx, s.keys.owner(out.ID), p, keep) })
	if err == nil {
		err = owner.Err()
	}
	if err != nil {
		return Approval{}, unavailable("create", err, msgWriteDown)
	}
	code, _, err := replyOf(res)
	switch {
	case err != nil:
		return Approval{}, internal("create", "%v", err)
	case code == rTooMany:
		// The owner record went out with the script: take it back.
		_ = s.rdb.Del(context.WithoutCancel(ctx), s.keys.owner(out.ID)).Err()
		return Approval{}, fault.Newf(limits.TooMany,
			"this human already has %d approvals asked within the last %s, the most one may have (the operator's --pending-approvals); nothing was asked, charged or changed. "+
				"Let the human decide the pending ones on the approvals page, or retry after some expire.", s.cfg.MaxPending, s.cfg.TTL)
	case code == rExists || !owner.Val():
		return Approval{}, internal("create", "approval id %q is taken: ApprovalsConfig.NewID repeats itself", out.ID)
	case code != rOK:
		return Approval{}, internal("create", "script replied %d", code)
	}
	return out, nil
}

// Get returns the approval with this id, whoever it belongs to: it is the
// lookup of the approvals page, which has only the id from its URL. The id
// alone is not authority: the page must show the approval only to the
// human signed in as Approval.Binding.Principal, and Decide checks that
// again. Unknown ids are fault.NotFound.
func (s *Approvals) Get(ctx context.Context, id string) (Approval, error) {
	if !validID(id) {
		return Approval{}, refuse(errApprovalNotFound)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	p, err := s.rdb.Get(ctx, s.keys.owner(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Approval{}, refuse(errApprovalNotFound)
	}
	if err != nil {
		return Approval{}, unavailable("get", err, msgReadDown)
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.approval(p, id)).Result()
	if err != nil {
		return Approval{}, unavailable("get", err, msgReadDown)
	}
	if len(h) == 0 {
		return Approval{}, refuse(errApprovalNotFound)
	}
	a, err := decodeApproval(h, s.cfg.Now())
	if err != nil {
		return Approval{}, internal("get", "%v", err)
	}
	if a.ID != id || a.Binding.Principal != p {
		return Approval{}, internal("get", "approval %q is recorded under another id or principal", id)
	}
	return a, nil
}

// List returns the principal's approvals, newest first (at most 100), with
// expired ones marked StatusExpired; with pendingOnly, only those still
// waiting for a decision. One Redis round trip.
func (s *Approvals) List(ctx context.Context, principal string, pendingOnly bool) ([]Approval, error) {
	if !validPrincipal(principal) {
		return nil, invalid("the principal is missing or not printable text of at most %d bytes.", maxPrincipal)
	}
	now := s.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.scripts.list.Run(ctx, s.rdb, []string{s.keys.approvals(principal)},
		s.keys.base(principal), ms(now), maxList).Result()
	if err != nil {
		return nil, unavailable("list", err, msgReadDown)
	}
	code, vals, err := replyOf(res)
	if err != nil || code != rListed {
		return nil, internal("list", "reply %d: %v", code, err)
	}
	out := make([]Approval, 0, len(vals))
	for _, v := range vals {
		h, err := recordOf(v)
		if err != nil {
			return nil, internal("list", "%v", err)
		}
		a, err := decodeApproval(h, now)
		if err != nil {
			return nil, internal("list", "%v", err)
		}
		if a.Binding.Principal != principal {
			return nil, internal("list", "approval %q is recorded under another principal", a.ID)
		}
		if !pendingOnly || a.Status == StatusPending {
			out = append(out, a)
		}
	}
	return out, nil
}

// Decide records the human's decision: approve or deny. principal is who
// the caller authenticated; by says how (e.g. "page", "cli:ops@example.com")
// and is recorded. It is atomic (one Lua script, one round trip) and
// refuses:
//   - approval_forbidden when principal is not the approval's principal
//     (the message says nothing about the approval);
//   - approval_decided when it was already approved, denied or used;
//   - approval_expired at or after its expiry: a late accept is refused;
//   - fault.NotFound for an unknown id; fault.Unavailable when Redis errs.
func (s *Approvals) Decide(ctx context.Context, id, principal string, approve bool, by string) (Approval, error) {
	if !validID(id) {
		return Approval{}, refuse(errApprovalNotFound)
	}
	if !validPrincipal(principal) {
		return Approval{}, refuse(errApprovalForbidden)
	}
	if !optionalText(by, maxBy) || strings.ContainsAny(by, "\n\t") {
		return Approval{}, invalid("who decided must be printable text of at most %d bytes; nothing was changed.", maxBy)
	}
	status := StatusDenied
	if approve {
		status = StatusApproved
	}
	now := s.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var owner *redis.StringCmd
	res, err := runWith(ctx, s.rdb, s.scripts.decide, []string{s.keys.approval(principal, id)},
		[]any{principal, ms(now), string(status), by},
		func(pl redis.Pipeliner) { owner = pl.Get(ctx, s.keys.owner(id)) })
	if err != nil {
		return Approval{}, unavailable("decide", err, msgDecideDown)
	}
	code, vals, err := replyOf(res)
	if err != nil {
		return Approval{}, internal("decide", "%v", err)
	}
	switch code {
	case rOK:
		return s.decoded("decide", vals, now)
	case rNotFound:
		// The record is keyed by principal, so another principal's approval
		// is not found under this one; the owner index tells the two apart.
		switch err := owner.Err(); {
		case err == nil && owner.Val() != principal:
			return Approval{}, refuse(errApprovalForbidden)
		case err == nil || errors.Is(err, redis.Nil):
			return Approval{}, refuse(errApprovalNotFound)
		default:
			return Approval{}, unavailable("decide", err, msgDecideDown)
		}
	case rDecided:
		return Approval{}, refuse(errApprovalDecided)
	case rExpired:
		return Approval{}, refuse(errApprovalExpired)
	default:
		return Approval{}, internal("decide", "script replied %d", code)
	}
}

// Consume uses an approved approval for the agent's retried call, once. It
// is atomic (one Lua script, one round trip): the approval must exist for
// want.Principal, have been asked for exactly want (session, tool and
// arguments digest), be approved, unexpired and unused; it is then marked
// used. Refusals: fault.NotFound (unknown id, or another principal's: the
// two are indistinguishable), approval_mismatch, approval_pending,
// approval_denied, approval_expired, approval_used, fault.Unavailable.
func (s *Approvals) Consume(ctx context.Context, id string, want Binding) (Approval, error) {
	if err := want.validate(); err != nil {
		return Approval{}, err
	}
	if !validID(id) {
		return Approval{}, refuse(errApprovalNotFound)
	}
	now := s.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.scripts.consume.Run(ctx, s.rdb, []string{s.keys.approval(want.Principal, id)},
		want.Principal, want.Session, want.Tool, want.ArgsDigest, ms(now)).Result()
	if err != nil {
		return Approval{}, unavailable("consume", err, msgGateDown)
	}
	code, vals, err := replyOf(res)
	if err != nil {
		return Approval{}, internal("consume", "%v", err)
	}
	switch code {
	case rOK:
		return s.decoded("consume", vals, now)
	case rNotFound:
		return Approval{}, refuse(errApprovalNotFound)
	case rMismatch:
		return Approval{}, refuse(errApprovalMismatch)
	case rPending:
		return Approval{}, refuse(errApprovalPending)
	case rDenied:
		return Approval{}, refuse(errApprovalDenied)
	case rExpired:
		return Approval{}, refuse(errApprovalExpired)
	case rUsed:
		return Approval{}, refuse(errApprovalUsed)
	default:
		return Approval{}, internal("consume", "script replied %d", code)
	}
}

// decoded reads the record that follows an ok reply.
func (s *Approvals) decoded(op string, vals []any, now time.Time) (Approval, error) {
	if len(vals) != 1 {
		return Approval{}, internal(op, "%d values after ok", len(vals))
	}
	h, err := recordOf(vals[0])
	if err != nil {
		return Approval{}, internal(op, "%v", err)
	}
	a, err := decodeApproval(h, now)
	if err != nil {
		return Approval{}, internal(op, "%v", err)
	}
	return a, nil
}
