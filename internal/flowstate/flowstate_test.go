package flowstate

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

var billing = Record{Principal: "user:alice@example.com", Kind: "billing", Session: "cs_1", Customer: "cus_1", Email: "alice@example.com"}

func newStore(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb
}

func TestFlowCompletesOnce(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t)
	if err := s.Save(ctx, "ap1", billing); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, key("ap1")).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("TTL %v, want 10m", ttl)
	}
	for _, step := range []struct {
		name string
		read func(context.Context, string) (Record, error)
		code fault.Code
	}{
		{"get leaves the record", s.Get, ""},
		{"take returns it", s.Take, ""},
		{"a second take finds nothing", s.Take, fault.NotFound},
		{"nor does get", s.Get, fault.NotFound},
	} {
		rec, err := step.read(ctx, "ap1")
		testkit.WantCode(t, err, step.code)
		if step.code == "" && rec != billing {
			t.Fatalf("%s: %+v, want %+v", step.name, rec, billing)
		}
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("corrupt record", func(t *testing.T) {
		s, rdb := newStore(t)
		rdb.Set(ctx, key("ap1"), "{not json", time.Minute)
		_, err := s.Take(ctx, "ap1")
		testkit.WantCode(t, err, fault.Internal)
	})
	t.Run("another flow's record is not this one's", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.Save(ctx, "ap1", billing); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(ctx, "ap2")
		testkit.WantCode(t, err, fault.NotFound)
	})
	t.Run("redis down fails closed", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rdb.Close() })
		s, err := New(rdb, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WantCode(t, s.Save(ctx, "ap1", billing), fault.Unavailable)
		_, err = s.Get(ctx, "ap1")
		testkit.WantCode(t, err, fault.Unavailable)
		_, err = s.Take(ctx, "ap1")
		testkit.WantCode(t, err, fault.Unavailable)
	})
}

func TestNewValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
		ttl  time.Duration
	}{
		{"no client", nil, time.Minute},
		{"zero TTL", rdb, 0},
		{"negative TTL", rdb, -time.Minute},
	} {
		if _, err := New(tc.rdb, tc.ttl); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}
