package links

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

func TestSecretsAreSealedAndBound(t *testing.T) {
	rdb := testkit.Redis(t)
	defer rdb.Close()
	key := make([]byte, 32)
	s, err := New(rdb, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.AddSecret(ctx, "user:alice@example.com", "cf-token", "s3cret-value"); err != nil {
		t.Fatal(err)
	}
	raw, _ := rdb.HGet(ctx, "tg:{user:alice@example.com}:links", "secret:cf-token").Result()
	if strings.Contains(raw, "s3cret") || raw == "" {
		t.Fatalf("stored in the clear: %q", raw)
	}
	v, ok, err := s.Secret(ctx, "user:alice@example.com", "cf-token")
	if err != nil || !ok || v != "s3cret-value" {
		t.Fatalf("%q %v %v", v, ok, err)
	}
	// Moved to another principal's hash, the ciphertext does not open.
	rdb.HSet(ctx, "tg:{user:mallory@example.com}:links", "secret:cf-token", raw)
	if _, _, err := s.Secret(ctx, "user:mallory@example.com", "cf-token"); err == nil {
		t.Fatal("a secret opened under another principal")
	}
	other, _ := New(rdb, append(make([]byte, 31), 1))
	if _, _, err := other.Secret(ctx, "user:alice@example.com", "cf-token"); err == nil {
		t.Fatal("a secret opened under another key")
	}
	if err := s.Set(ctx, "user:alice@example.com", map[string]string{"secret:x": "y"}); err == nil {
		t.Fatal("Set wrote a secret field in the clear")
	}
	names, _ := s.SecretNames(ctx, "user:alice@example.com")
	if len(names) != 1 || names[0] != "cf-token" {
		t.Fatalf("names %v", names)
	}
}
