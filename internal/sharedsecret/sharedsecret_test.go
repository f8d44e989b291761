package sharedsecret

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

func TestReplicasShareOneSecretPerName(t *testing.T) {
	ctx := context.Background()
	opt := testkit.RedisOptions(t)
	replica := func() *Store {
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		s, err := New(rdb)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := replica(), replica()
	seen := map[string]Name{}
	for _, n := range []Name{Idempotency, Credentials, Approvals} {
		first, err := a.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		second, err := b.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := a.Get(ctx, n)
		switch {
		case len(first) != Size:
			t.Fatalf("%s: %d bytes", n, len(first))
		case !bytes.Equal(first, second) || !bytes.Equal(first, again):
			t.Fatalf("%s: replicas got different secrets", n)
		case seen[string(first)] != "":
			t.Fatalf("%s and %s share one secret", n, seen[string(first)])
		}
		seen[string(first)] = n
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown name writes nothing", func(t *testing.T) {
		rdb := testkit.Redis(t)
		t.Cleanup(func() { _ = rdb.Close() })
		s, _ := New(rdb)
		for _, n := range []Name{"", "other", "approvals:x", "../approvals"} {
			if _, err := s.Get(ctx, n); err == nil {
				t.Errorf("Get(%q) succeeded", n)
			}
		}
		if n := rdb.DBSize(ctx).Val(); n != 0 {
			t.Fatalf("%d keys written", n)
		}
	})
	t.Run("a value of the wrong size is refused, never replaced", func(t *testing.T) {
		rdb := testkit.Redis(t)
		t.Cleanup(func() { _ = rdb.Close() })
		s, _ := New(rdb)
		rdb.Set(ctx, key(Approvals), "short", 0)
		if _, err := s.Get(ctx, Approvals); err == nil {
			t.Fatal("a 5-byte secret was accepted")
		}
		if v := rdb.Get(ctx, key(Approvals)).Val(); v != "short" {
			t.Fatalf("the stored value was replaced: %q", v)
		}
	})
	t.Run("redis down", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rdb.Close() })
		s, _ := New(rdb)
		if got, err := s.Get(ctx, Idempotency); err == nil || got != nil {
			t.Fatalf("Get = %x, %v; want an error", got, err)
		}
	})
	t.Run("no client", func(t *testing.T) {
		if _, err := New(nil); err == nil {
			t.Fatal("New(nil) succeeded")
		}
	})
}
