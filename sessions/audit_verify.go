package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Reasons Verify gives for a broken chain. They are stable; the CLI prints
// them and tests match them.
const (
	// BrokenHash: the entry's content does not hash to its recorded hash
	// (it was altered, or does not decode).
	BrokenHash = "hash mismatch"
	// BrokenPrev: the entry does not point at the entry before it; an entry
	// was removed or inserted between them, or the one before rewritten.
	BrokenPrev = "prev mismatch"
	// BrokenSeq: the sequence number jumps although the hashes link.
	BrokenSeq = "seq gap"
	// BrokenHead: the last entry is not the one the head record names;
	// entries were removed from the end, or the head was changed.
	BrokenHead = "head mismatch"
)

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	Entries int  `json:"entries"` // entries checked, in every chain
	Chains  int  `json:"chains"`  // chains checked: the system chain and one per principal
	OK      bool `json:"ok"`      // every chain links up
	// Chain names the broken chain: its principal, or "system".
	Chain    string `json:"chain,omitempty"`
	BrokenAt string `json:"broken_at,omitempty"` // stream id of the first bad entry
	Reason   string `json:"reason,omitempty"`    // one of the Broken* reasons
	Detail   string `json:"detail,omitempty"`    // what exactly did not match
	// Head digests the head of every chain checked (SHA-256 over
	// "<chain>\x00<head hash>\n", chains sorted). Kept outside Redis, it
	// lets a later Verify or an export be compared, which catches even a
	// chain recomputed from that point back.
	Head string `json:"head,omitempty"`
}

// Verify checks every chain (the system chain and every principal's in the
// index), each oldest entry first: every entry hashes to its recorded
// hash, points at the entry before it and takes the next sequence number;
// the first starts at GenesisHash and seq 1 (unless AuditConfig.MaxLen
// trims the stream); and the last is the one the head record names. It
// stops at the first broken link, reporting its chain, stream id and
// reason.
//
// Appends may continue meanwhile: Verify reads a stream to its end, then
// the head, then any entries up to the head. The script moves the head
// with every entry, so a head behind the last entry read, or naming an
// entry that is not there, is tampering.
//
// progress, if not nil, is called after each page with the number of
// entries checked so far. A Redis failure returns fault.Unavailable; a
// broken chain is not an error, it is a result with OK false.
func (a *Audit) Verify(ctx context.Context, progress func(int)) (VerifyResult, error) {
	chains, err := a.chainsToRead(ctx, "")
	if err != nil {
		return VerifyResult{}, err
	}
	var res VerifyResult
	heads := make([]string, 0, len(chains))
	for _, c := range chains {
		name := c.principal
		if name == "" {
			name = "system"
		}
		done := res.Entries
		v := verifier{expPrev: GenesisHash, expSeq: 1, trimmed: a.cfg.MaxLen > 0,
			progress: func(n int) {
				if progress != nil {
					progress(done + n)
				}
			}}
		err := a.scan(ctx, c, "-", "+", v.check, v.page)
		if err == nil {
			err = v.finish(ctx, a, c)
		}
		res.Entries += v.res.Entries
		res.Chains++
		switch {
		case errors.Is(err, errBroken):
			res.OK, res.Chain, res.BrokenAt, res.Reason, res.Detail = false, name, v.res.BrokenAt, v.res.Reason, v.res.Detail
			return res, nil
		case err != nil:
			return VerifyResult{}, err
		}
		if v.lastHash != "" {
			heads = append(heads, name+"\x00"+v.lastHash+"\n")
		}
	}
	res.OK, res.Head = true, headsDigest(heads)
	return res, nil
}

// headsDigest is VerifyResult.Head of the given "<chain>\x00<hash>\n"
// lines ("" when every chain is empty).
func headsDigest(heads []string) string {
	if len(heads) == 0 {
		return ""
	}
	sort.Strings(heads)
	h := sha256.New()
	for _, l := range heads {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// errBroken stops the scan at the first broken link.
var errBroken = errors.New("sessions: audit chain broken")

// verifier is the state of one Verify.
type verifier struct {
	res              VerifyResult
	expPrev          string
	expSeq           int64
	trimmed          bool
	lastID, lastHash string
	progress         func(int)
}

func (v *verifier) fail(id, reason, format string, args ...any) error {
	v.res.BrokenAt, v.res.Reason, v.res.Detail = id, reason, fmt.Sprintf(format, args...)
	return errBroken
}

func (v *verifier) page(int) {
	if v.progress != nil {
		v.progress(v.res.Entries)
	}
}

func (v *verifier) check(m redis.XMessage) error {
	v.res.Entries++
	e, want, err := decodeMessage(m)
	if err != nil {
		return v.fail(m.ID, BrokenHash, "entry %s does not decode: %v", m.ID, err)
	}
	if v.res.Entries == 1 && v.trimmed {
		// The stream is capped: its oldest entry may have lost its
		// predecessors to trimming, so the chain starts there.
		v.expPrev, v.expSeq = e.Prev, e.Seq
	}
	switch {
	case want != e.Hash:
		return v.fail(m.ID, BrokenHash, "entry %s (seq %d) hashes to %s but records %s: it was altered",
			m.ID, e.Seq, short(want), short(e.Hash))
	case e.Prev != v.expPrev:
		return v.fail(m.ID, BrokenPrev, "entry %s (seq %d) points at %s but the entry before it (%s) hashes to %s: an entry was removed, inserted or rewritten",
			m.ID, e.Seq, short(e.Prev), orGenesis(v.lastID), short(v.expPrev))
	case e.Seq != v.expSeq:
		return v.fail(m.ID, BrokenSeq, "entry %s has seq %d, expected %d", m.ID, e.Seq, v.expSeq)
	}
	v.expPrev, v.expSeq = want, e.Seq+1
	v.lastID, v.lastHash = m.ID, want
	return nil
}

// finish compares the end of the chain with the head record, first reading
// the entries appended since the scan passed the end.
func (v *verifier) finish(ctx context.Context, a *Audit, c *chain) error {
	head, ok, err := a.readHead(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		if v.res.Entries == 0 {
			return nil
		}
		return v.fail(v.lastID, BrokenHead, "the head record is missing although the stream has %d entries", v.res.Entries)
	}
	cmp, valid := compareIDs(head.id, orZero(v.lastID))
	if valid && cmp > 0 {
		start := "-"
		if v.lastID != "" {
			start, _ = nextID(v.lastID)
		}
		if err := a.scan(ctx, c, start, head.id, v.check, v.page); err != nil {
			return err
		}
	}
	if head.hash != v.lastHash || head.seq != v.expSeq-1 || head.id != v.lastID {
		return v.fail(head.id, BrokenHead, "the head names entry %s (seq %d, hash %s) but the chain ends at %s (seq %d, hash %s): entries were removed from the end or the head was changed",
			head.id, head.seq, short(head.hash), orGenesis(v.lastID), v.expSeq-1, short(v.lastHash))
	}
	return nil
}

func orZero(id string) string {
	if id == "" {
		return "0-0"
	}
	return id
}

// readHead reads the head record; ok is false when there is none.
func (a *Audit) readHead(ctx context.Context, c *chain) (chainHead, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	v, err := a.rdb.HMGet(ctx, c.head, "hash", "seq", "id").Result()
	if err != nil {
		return chainHead{}, false, unavailable("audit verify: head", err, msgAuditReadDown)
	}
	hash, _ := v[0].(string)
	seqText, _ := v[1].(string)
	id, _ := v[2].(string)
	if hash == "" && seqText == "" && id == "" {
		return chainHead{}, false, nil
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		// An unreadable head is a broken head: it names nothing.
		seq = -1
	}
	return chainHead{hash: hash, seq: seq, id: id}, true, nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

func orGenesis(id string) string {
	if id == "" {
		return "genesis"
	}
	return id
}
