package observe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The stores are read at most once per Every however often /metrics is
// scraped; a failed read leaves its gauge out and is counted; a truncated
// read says so.
func TestStateGauges(t *testing.T) {
	o := New(Config{Version: "test", Mode: "sandbox"})
	now := time.Unix(1_800_000_000, 0)
	var holdReads, pendingReads int
	var holdErr error
	o.WatchState(StateConfig{
		Every: 15 * time.Second,
		Now:   func() time.Time { return now },
		Holds: func(context.Context) (int64, int64, bool, error) {
			holdReads++
			return 3, 1, false, holdErr
		},
		Pending: func(context.Context) (int64, bool, error) {
			pendingReads++
			return 7, true, nil
		},
	})
	for range 1000 {
		if _, err := o.reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if holdReads != 1 || pendingReads != 1 {
		t.Fatalf("1000 scrapes within Every read the stores %d and %d times, want once", holdReads, pendingReads)
	}
	want := `
# HELP tollgate_holds Unsettled holds in the spend ledger by state: held (open, TTL not passed) and expired (TTL passed without a commit or release; reconcile them).
# TYPE tollgate_holds gauge
tollgate_holds{state="expired"} 1
tollgate_holds{state="held"} 3
# HELP tollgate_approvals_pending Approvals waiting for a human's decision whose TTL has not passed.
# TYPE tollgate_approvals_pending gauge
tollgate_approvals_pending 7
# HELP tollgate_state_truncated 1 when the last read of a state gauge stopped at its bound and the gauge is a lower bound.
# TYPE tollgate_state_truncated gauge
tollgate_state_truncated{gauge="approvals"} 1
tollgate_state_truncated{gauge="holds"} 0
# HELP tollgate_state_read_errors_total Reads of the stores for a state gauge (holds, approvals) that failed; that gauge is left out of the scrape.
# TYPE tollgate_state_read_errors_total counter
tollgate_state_read_errors_total{gauge="approvals"} 0
tollgate_state_read_errors_total{gauge="holds"} 0
`
	names := []string{"tollgate_holds", "tollgate_approvals_pending", "tollgate_state_truncated", "tollgate_state_read_errors_total"}
	if err := testutil.GatherAndCompare(o.reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// The ledger goes away: the next read fails, holds are left out (not
	// zero), the error is counted once, approvals still answer.
	holdErr = errors.New("connection refused")
	now = now.Add(15 * time.Second)
	for range 10 {
		if _, err := o.reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	want = `
# HELP tollgate_approvals_pending Approvals waiting for a human's decision whose TTL has not passed.
# TYPE tollgate_approvals_pending gauge
tollgate_approvals_pending 7
# HELP tollgate_state_read_errors_total Reads of the stores for a state gauge (holds, approvals) that failed; that gauge is left out of the scrape.
# TYPE tollgate_state_read_errors_total counter
tollgate_state_read_errors_total{gauge="approvals"} 0
tollgate_state_read_errors_total{gauge="holds"} 1
`
	if err := testutil.GatherAndCompare(o.reg, strings.NewReader(want), "tollgate_holds", "tollgate_approvals_pending", "tollgate_state_read_errors_total"); err != nil {
		t.Fatal(err)
	}
	if holdReads != 2 {
		t.Fatalf("holds read %d times, want 2", holdReads)
	}
}

// A slow store cannot hold a scrape past Timeout.
func TestStateGaugesTimeout(t *testing.T) {
	o := New(Config{Version: "test", Mode: "sandbox"})
	o.WatchState(StateConfig{
		Timeout: 50 * time.Millisecond,
		Holds: func(ctx context.Context) (int64, int64, bool, error) {
			<-ctx.Done()
			return 0, 0, false, ctx.Err()
		},
	})
	start := time.Now()
	if _, err := o.reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a scrape waited %s for a slow store", d)
	}
	want := `
# HELP tollgate_state_read_errors_total Reads of the stores for a state gauge (holds, approvals) that failed; that gauge is left out of the scrape.
# TYPE tollgate_state_read_errors_total counter
tollgate_state_read_errors_total{gauge="approvals"} 0
tollgate_state_read_errors_total{gauge="holds"} 1
`
	if err := testutil.GatherAndCompare(o.reg, strings.NewReader(want), "tollgate_holds", "tollgate_state_read_errors_total"); err != nil {
		t.Fatal(err)
	}
}
