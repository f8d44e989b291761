package sessions

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// auditPage is how many entries one XRANGE reads.
const auditPage = 1000

// Stream field names of an entry.
const (
	sfEntry = "entry"
	sfHash  = "hash"
)

// ExportFilter selects entries for Export. The zero value selects all.
type ExportFilter struct {
	Session   string    // only entries of this session
	Principal string    // only entries of this principal
	Since     time.Time // only entries whose Time is not before Since
}

func (f ExportFilter) match(e Entry) bool {
	return (f.Session == "" || e.Session == f.Session) &&
		(f.Principal == "" || e.Principal == f.Principal) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since))
}

// Export writes the entries that match f to w as JSON lines, each an Entry
// with its ID and Hash, and returns how many it wrote: the system chain
// first, then each principal's chain (only f.Principal's when set), each
// oldest first. It reads the chains in pages; it does not verify them
// (Verify does). An entry that does not decode stops the export with
// fault.Internal.
func (a *Audit) Export(ctx context.Context, w io.Writer, f ExportFilter) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	chains, err := a.chainsToRead(ctx, f.Principal)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range chains {
		err := a.scan(ctx, c, "-", "+", func(m redis.XMessage) error {
			e, _, err := decodeMessage(m)
			if err != nil {
				return internal("audit export", "entry %s: %v", m.ID, err)
			}
			if !f.match(e) {
				return nil
			}
			if err := enc.Encode(e); err != nil {
				return fmt.Errorf("sessions: audit export: write: %w", err)
			}
			n++
			return nil
		}, nil)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ForSessions returns the entries of each of the given sessions (session
// id → its principal), oldest first, keyed by session id; sessions without
// entries are absent. It reads the chain of each principal named, in
// pages. Entries that do not decode are skipped (Verify reports them).
func (a *Audit) ForSessions(ctx context.Context, sessions map[string]string) (map[string][]Entry, error) {
	out := make(map[string][]Entry)
	byPrincipal := map[string]bool{}
	for _, p := range sessions {
		byPrincipal[p] = true
	}
	for p := range byPrincipal {
		c := newChain(p, a.keys.base(p)+"audit")
		if p == "" {
			c = newChain("", a.system.stream)
		}
		err := a.scan(ctx, c, "-", "+", func(m redis.XMessage) error {
			e, _, err := decodeMessage(m)
			if err == nil && e.Session != "" {
				if owner, ok := sessions[e.Session]; ok && owner == p {
					out[e.Session] = append(out[e.Session], e)
				}
			}
			return nil
		}, nil)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scan calls fn for every stream entry from id start ("-" for the first)
// up to and including id end ("+" for the last), in pages, each XRANGE
// bounded by the timeout. page, if not nil, is called after each page with
// the number of entries read so far.
func (a *Audit) scan(ctx context.Context, c *chain, start, end string, fn func(redis.XMessage) error, page func(int)) error {
	n := 0
	for {
		msgs, err := a.xrange(ctx, c, start, end)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			n++
			if err := fn(m); err != nil {
				return err
			}
		}
		if page != nil && len(msgs) > 0 {
			page(n)
		}
		if len(msgs) < auditPage {
			return nil
		}
		last := msgs[len(msgs)-1].ID
		if last == end {
			return nil
		}
		if start, err = nextID(last); err != nil {
			return internal("audit read", "stream id %q: %v", last, err)
		}
	}
}

func (a *Audit) xrange(ctx context.Context, c *chain, start, end string) ([]redis.XMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	msgs, err := a.rdb.XRangeN(ctx, c.stream, start, end, auditPage).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("audit read", err, msgAuditReadDown)
	}
	return msgs, nil
}

// nextID returns the smallest stream id after id ("ms-seq"). Exclusive
// ranges ("(id") would do, but the sandbox's miniredis may not know them.
func nextID(id string) (string, error) {
	ms, seq, ok := splitID(id)
	if !ok {
		return "", errors.New("not ms-seq")
	}
	if seq == ^uint64(0) {
		return strconv.FormatUint(ms+1, 10) + "-0", nil
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10), nil
}

// compareIDs orders two stream ids ("ms-seq"); ok is false when either is
// not one.
func compareIDs(x, y string) (c int, ok bool) {
	xm, xs, ok1 := splitID(x)
	ym, ys, ok2 := splitID(y)
	if !ok1 || !ok2 {
		return 0, false
	}
	return cmp.Or(cmp.Compare(xm, ym), cmp.Compare(xs, ys)), true
}

func splitID(id string) (ms, seq uint64, ok bool) {
	msText, seqText, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(msText, 10, 64)
	seq, err2 := strconv.ParseUint(seqText, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// decodeMessage reads a stream entry into an Entry (ID and stored Hash
// filled) and returns the hash its content should have.
func decodeMessage(m redis.XMessage) (e Entry, want string, err error) {
	body, ok1 := m.Values[sfEntry].(string)
	hash, ok2 := m.Values[sfHash].(string)
	if !ok1 || !ok2 || len(m.Values) != 2 {
		return Entry{}, "", errors.New("stream entry lacks its entry and hash fields, or has others")
	}
	e, err = parseRecord([]byte(body))
	if err != nil {
		return Entry{}, "", err
	}
	// Hash the re-encoded form, not the stored bytes, so that whatever a
	// reader decodes is exactly what was checked (a duplicated JSON key,
	// say, cannot hide behind a valid hash).
	canon, err := canonical(e)
	if err != nil {
		return Entry{}, "", err
	}
	e.ID, e.Hash = m.ID, hash
	return e, chainHash(e.Prev, canon), nil
}
