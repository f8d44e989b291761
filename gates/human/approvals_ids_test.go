package human

import (
	"context"
	"slices"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestIDsListEveryPrincipalsApprovals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		approvals     int // made alternately for alice and bob
		max           int
		want          int
		wantTruncated bool
		code          fault.Code
	}{
		{"no approvals", 0, 10, 0, false, ""},
		{"every principal's, not only one's", 4, 10, 4, false, ""},
		{"exactly max is not truncated", 3, 3, 3, false, ""},
		{"past max is truncated", 5, 3, 3, true, ""},
		{"max below one is refused", 1, 0, 0, false, fault.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var made []string
			for i := range tt.approvals {
				b := call
				if i%2 == 1 {
					b.Principal = bob
				}
				made = append(made, f.create(purchase(b)).ID)
			}
			ids, truncated, err := f.approvals.IDs(ctx, tt.max)
			wantCode(t, err, tt.code)
			if len(ids) != tt.want || truncated != tt.wantTruncated {
				t.Fatalf("got %d ids (truncated %v), want %d (truncated %v)", len(ids), truncated, tt.want, tt.wantTruncated)
			}
			for _, id := range ids {
				if !slices.Contains(made, id) {
					t.Fatalf("id %q was never made", id)
				}
			}
			if !truncated && tt.code == "" {
				slices.Sort(ids)
				slices.Sort(made)
				if !slices.Equal(ids, made) {
					t.Fatalf("ids %v, want %v", ids, made)
				}
			}
		})
	}
}
