package spend

import (
	"context"
	"testing"
	"time"
)

// A hold belongs to the month it was made in (SPEC §9.1): one made at
// 23:59:59.999 UTC on 30 November is settled in November even when its
// commit lands on 1 December, and December starts with the whole cap.
func TestHoldStaysInTheMonthItWasMadeIn(t *testing.T) {
	ctx := context.Background()
	lastMoment := time.Date(2026, 11, 30, 23, 59, 59, 999_000_000, time.UTC)
	tests := []struct {
		name   string
		settle func(f *fixture) error
		// November's spent and held afterwards
		novSpent, novHeld int64
	}{
		{"commit after midnight", func(f *fixture) error { return f.ledger.Commit(ctx, alice, "h", usd(7000)) }, 7000, 0},
		{"release after midnight", func(f *fixture) error { return f.ledger.Release(ctx, alice, "h", "") }, 0, 0},
		{"expiry after midnight", func(f *fixture) error {
			f.clock.Advance(DefaultHoldTTL)
			_, err := f.ledger.ReapExpired(ctx, alice)
			return err
		}, 0, 0},
		{"still open after midnight", func(f *fixture) error { return nil }, 0, 9000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{})
			f.clock.Set(lastMoment)
			h := f.mustHold("h", usd(9000))
			if h.Month != "2026-11" {
				t.Fatalf("hold month %q, want 2026-11", h.Month)
			}
			if s := f.status(); s.Month != "2026-11" || s.Held != usd(9000) {
				t.Fatalf("November before midnight: %+v", s)
			}
			f.clock.Advance(2 * time.Millisecond) // 2026-12-01T00:00:00.001Z
			wantCode(t, tt.settle(f), "")

			dec := f.status()
			if dec.Month != "2026-12" || dec.Spent.Minor != 0 || dec.Held.Minor != 0 || dec.Remaining != dec.Cap {
				t.Fatalf("December: %+v, want an untouched month", dec)
			}
			nov := f.rdb.HMGet(ctx, f.ledger.keys.cap(alice, Stripe, "2026-11"), "spent", "held").Val()
			if asInt(nov[0]) != tt.novSpent || asInt(nov[1]) != tt.novHeld {
				t.Fatalf("November spent %v held %v, want %d and %d", nov[0], nov[1], tt.novSpent, tt.novHeld)
			}
			// December's cap is whole: a hold of all of it fits.
			f.mustHold("dec", usd(DefaultCapMinor))
		})
	}
}

func asInt(v any) int64 {
	s, _ := v.(string)
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestMonthIsUTC(t *testing.T) {
	east := time.FixedZone("UTC+14", 14*3600)
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 30, 23, 59, 59, 999_999_999, time.UTC), "2026-11"},
		{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "2026-12"},
		{time.Date(2026, 12, 1, 9, 0, 0, 0, east), "2026-11"}, // 19:00 UTC on 30 November
		{time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "2026-12"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2027-01"},
	}
	for _, tt := range tests {
		if got := month(tt.at); got != tt.want {
			t.Errorf("month(%v) = %s, want %s", tt.at, got, tt.want)
		}
	}
}
