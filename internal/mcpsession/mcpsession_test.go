package mcpsession

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

const (
	alice   = "user:alice@example.com"
	mallory = "user:mallory@example.com"
)

func TestOwners(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		record []string // principals recording "mcp-1", in order
		ask    string
		want   string
	}{
		{"the opener owns its session", []string{alice}, "mcp-1", alice},
		{"a second record cannot take the session over", []string{alice, mallory}, "mcp-1", alice},
		{"an id never opened has no owner", []string{alice}, "mcp-2", ""},
		{"nothing recorded", nil, "mcp-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := testkit.Redis(t)
			t.Cleanup(func() { _ = rdb.Close() })
			o, err := New(rdb)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.record {
				if err := o.Record(ctx, "mcp-1", p); err != nil {
					t.Fatal(err)
				}
			}
			got, err := o.Owner(ctx, tt.ask)
			if err != nil || got != tt.want {
				t.Fatalf("Owner(%q) = %q, %v; want %q", tt.ask, got, err, tt.want)
			}
			if len(tt.record) > 0 {
				if ttl := rdb.TTL(ctx, key("mcp-1")).Val(); ttl <= TTL-time.Minute || ttl > TTL {
					t.Fatalf("TTL %v, want %v", ttl, TTL)
				}
			}
		})
	}
}

// Fail closed: a Redis that does not answer is an error, never "no owner"
// that a caller might mistake for permission to record one.
func TestRedisDownIsAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	o, err := New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := o.Owner(ctx, "mcp-1"); err == nil || got != "" {
		t.Fatalf("Owner = %q, %v; want an error", got, err)
	}
	if err := o.Record(ctx, "mcp-1", alice); err == nil {
		t.Fatal("Record succeeded without Redis")
	}
}

func TestNewRefusesNoClient(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}
