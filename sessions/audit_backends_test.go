package sessions

import (
	"bytes"
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fuse"
)

// The append script touches the stream, head and claim keys: all on one
// Cluster slot. The "#!lua" header makes Redis refuse undeclared keys of
// other slots too.
func TestAuditWorksOnRedisCluster(t *testing.T) {
	cc := startCluster(t)
	exerciseAudit(t, newAudit(t, cc, newClock(), AuditConfig{}), true)
}

// The sandbox runs on miniredis.
func TestAuditWorksOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	exerciseAudit(t, newAudit(t, rdb, newClock(), AuditConfig{MaxLen: 1000}), false)
}

// exerciseAudit appends from two instances, verifies, exports and
// detects a removed entry.
func exerciseAudit(t *testing.T, a *Audit, strict bool) {
	t.Helper()
	ctx := context.Background()
	if strict {
		ctx = fuse.Strict(ctx)
	}
	clk := newClock()
	a.cfg.Now = clk.Now
	b := newAudit(t, a.rdb, clk, a.cfg) // a second replica: same Redis, its own view of the head
	es := appendNCtx(ctx, t, a, clk, "s1", 3)
	es = append(es, appendNCtx(ctx, t, b, clk, "s2", 3)...)
	es = append(es, appendNCtx(ctx, t, a, clk, "s1", 1)...)
	verifyOK(t, a, 7)
	var buf bytes.Buffer
	if n, err := a.Export(ctx, &buf, ExportFilter{Session: "s2"}); err != nil || n != 3 {
		t.Fatalf("export = %d, %v", n, err)
	}
	if err := a.rdb.XDel(ctx, a.chainFor(alice).stream, es[3].ID).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := a.Verify(ctx, nil)
	if err != nil || res.OK || res.Reason != BrokenPrev || res.BrokenAt != es[4].ID {
		t.Fatalf("verify after XDEL = %+v, %v", res, err)
	}
}
