package sessions

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// rewrite replaces the whole stream with what edit makes of it, keeping the
// ids edit leaves: the way to alter an entry "in place" in a Redis Stream.
func rewrite(t *testing.T, rdb redis.UniversalClient, a *Audit, edit func([]redis.XMessage) []redis.XMessage) {
	t.Helper()
	ctx := context.Background()
	msgs, err := rdb.XRange(ctx, a.chainFor(alice).stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	msgs = edit(msgs)
	if err := rdb.Del(ctx, a.chainFor(alice).stream).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		vals := []string{sfEntry, m.Values[sfEntry].(string), sfHash, m.Values[sfHash].(string)}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: a.chainFor(alice).stream, ID: m.ID, Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// sealed is a stream message of e whose own hash is right, as a forger who
// recomputes one entry would write it.
func sealed(t *testing.T, id string, e Entry) redis.XMessage {
	t.Helper()
	body, err := canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	return redis.XMessage{ID: id, Values: map[string]any{sfEntry: string(body), sfHash: chainHash(e.Prev, body)}}
}

func decoded(t *testing.T, m redis.XMessage) Entry {
	t.Helper()
	e, _, err := decodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name string
		// tamper changes the stream of five entries and returns the index
		// of the entry Verify must name (-1: the head's entry).
		tamper func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int
		reason string
	}{
		{"field altered in place (deny rewritten to allow)", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				body := ms[2].Values[sfEntry].(string)
				ms[2].Values[sfEntry] = strings.Replace(body, `"decision":"deny"`, `"decision":"allow"`, 1)
				return ms
			})
			return 2
		}, BrokenHash},
		{"duplicated JSON key hides a change from readers", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				body := ms[1].Values[sfEntry].(string)
				ms[1].Values[sfEntry] = strings.Replace(body, `"prev"`, `"tool":"other","prev"`, 1)
				return ms
			})
			return 1
		}, BrokenHash},
		{"entry that no longer decodes", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				ms[3].Values[sfEntry] = "{not json"
				return ms
			})
			return 3
		}, BrokenHash},
		{"entry removed from the middle (XDEL)", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.XDel(context.Background(), a.chainFor(alice).stream, es[2].ID)
			return 3
		}, BrokenPrev},
		{"first entry removed", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.XDel(context.Background(), a.chainFor(alice).stream, es[0].ID)
			return 1
		}, BrokenPrev},
		{"entry altered and resealed (later entries untouched)", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				e := decoded(t, ms[1])
				e.Decision = DecisionAllow
				ms[1] = sealed(t, ms[1].ID, e)
				return ms
			})
			return 2
		}, BrokenPrev},
		{"forged entry inserted", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				forged := Entry{Seq: 3, Time: es[1].Time, Event: "commit", Nonce: "forged-nonce", Prev: es[1].Hash}
				out := make([]redis.XMessage, 0, len(ms)+1)
				for i, m := range ms {
					m.ID = strings.Repeat("1", i+1) + "-0" // fresh increasing ids
					out = append(out, m)
					if i == 1 {
						out = append(out, sealed(t, "12-0", forged))
					}
				}
				return out
			})
			return -2 // the entry after the forged one, id "111-0"
		}, BrokenPrev},
		{"seq renumbered and resealed", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rewrite(t, rdb, a, func(ms []redis.XMessage) []redis.XMessage {
				e := decoded(t, ms[2])
				e.Seq = 7
				ms[2] = sealed(t, ms[2].ID, e)
				return ms
			})
			return 2
		}, BrokenSeq},
		{"last entry removed", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.XDel(context.Background(), a.chainFor(alice).stream, es[4].ID)
			return -1
		}, BrokenHead},
		{"oldest entries trimmed on a chain kept in full", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.XTrimMaxLen(context.Background(), a.chainFor(alice).stream, 3)
			return 2
		}, BrokenPrev},
		{"head rewritten to an earlier entry", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.HSet(context.Background(), a.chainFor(alice).head, "hash", es[2].Hash, "seq", "3", "id", es[2].ID)
			return 2 // the head now names entry 2, but entries follow it
		}, BrokenHead},
		{"head hash changed", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.HSet(context.Background(), a.chainFor(alice).head, "hash", strings.Repeat("f", 64))
			return -1
		}, BrokenHead},
		{"head deleted", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.Del(context.Background(), a.chainFor(alice).head)
			return 4
		}, BrokenHead},
		{"whole stream deleted, head kept", func(t *testing.T, rdb redis.UniversalClient, a *Audit, es []Entry) int {
			rdb.Del(context.Background(), a.chainFor(alice).stream)
			return -1
		}, BrokenHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testkit.Redis(t)
			t.Cleanup(func() { _ = rdb.Close() })
			clk := newClock()
			a := newAudit(t, rdb, clk, AuditConfig{})
			es := appendN(t, a, clk, "s1", 2)
			deny, err := a.Append(context.Background(), Entry{Event: "tool_call", Principal: alice, Session: "s1", Decision: DecisionDeny, Code: "cap_exceeded"})
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, deny)
			es = append(es, appendN(t, a, clk, "s1", 2)...)
			verifyOK(t, a, 5)

			at := tc.tamper(t, rdb, a, es)
			res, err := a.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int]string{-1: es[4].ID, -2: "111-0"}[at]
			if at >= 0 {
				want = es[at].ID
			}
			if res.OK || res.Reason != tc.reason || res.BrokenAt != want {
				t.Fatalf("verify = %+v\nwant broken at %s with %q", res, want, tc.reason)
			}
			if res.Detail == "" {
				t.Fatal("no detail for the operator")
			}
		})
	}
}

// With its head gone, the chain cannot be continued honestly: appending
// refuses rather than start a second chain that would hide the loss.
func TestAuditAppendRefusesWithoutHead(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	a := newAudit(t, rdb, clk, AuditConfig{})
	appendN(t, a, clk, "s1", 2)
	rdb.Del(context.Background(), a.chainFor(alice).head)
	_, err := a.Append(context.Background(), Entry{Event: "tool_call", Principal: alice})
	wantCode(t, err, fault.Internal)
	if n, _ := rdb.XLen(context.Background(), a.chainFor(alice).stream).Result(); n != 2 {
		t.Fatalf("stream has %d entries after the refused append, want 2", n)
	}
}
