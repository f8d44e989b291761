// Package links remembers what connects a principal to a provider: the
// Cloudflare account linked by OAuth (with its credential, encrypted),
// the Stripe customer and the payment method on file, named secrets
// (API tokens the human asked to keep server-side). Everything lives in one
// Redis hash per principal.
//
// Secrets are sealed with AES-256-GCM under a key that comes from the
// operator (TOLLGATE_CREDENTIAL_KEY) in production; the sandbox keeps one
// in Redis. links never returns a secret to an agent: only the server's own
// provider adapters read them.
package links

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// Store keeps provider links per principal.
type Store struct {
	rdb     redis.UniversalClient
	aead    cipher.AEAD
	timeout time.Duration
}

// New returns a Store sealing secrets with key (32 bytes).
func New(rdb redis.UniversalClient, key []byte) (*Store, error) {
	if len(key) != 32 {
		return nil, errors.New("links: the credential key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, aead: aead, timeout: 2 * time.Second}, nil
}

func (s *Store) key(principal string) string { return linksKey(principal) }

func linksKey(principal string) string {
	return "tg:{" + rediskey.EscapePrincipal(principal) + "}:links"
}

// Set records plain fields (ids, never secrets).
func (s *Store) Set(ctx context.Context, principal string, fields map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		if strings.HasPrefix(k, "secret:") || strings.HasPrefix(k, "cred:") || strings.HasPrefix(k, fieldZonePrefix) || k == fieldCloudflareAccount {
			return fault.New(fault.Internal, "links: secrets, credentials and zones have their own methods")
		}
		args = append(args, k, v)
	}
	if err := s.rdb.HSet(ctx, s.key(principal), args...).Err(); err != nil {
		return fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was saved. Retry shortly")
	}
	return nil
}

// Get reads a plain field ("" when unset).
func (s *Store) Get(ctx context.Context, principal, field string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := s.rdb.HGet(ctx, s.key(principal), field).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was done. Retry shortly")
	}
	return v, nil
}

// SecretExists: AddSecret found a secret of that name already.
const SecretExists fault.Code = "secret_exists"

// AddSecret seals value and stores it under name unless a secret of that
// name exists already (fault SecretExists): a stored secret is never
// replaced behind the human's back.
func (s *Store) AddSecret(ctx context.Context, principal, name, value string) error {
	sealed, err := s.seal(principal, name, []byte(value))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	added, err := s.rdb.HSetNX(ctx, s.key(principal), "secret:"+name, sealed).Result()
	if err != nil {
		return fault.Wrap(err, fault.Unavailable, "the secret store is unavailable; nothing was saved. Retry shortly")
	}
	if !added {
		return fault.Newf(SecretExists, "a secret named %q is already stored for this human; nothing was replaced", name)
	}
	return nil
}

// HasSecret reports whether a secret named name is stored.
func (s *Store) HasSecret(ctx context.Context, principal, name string) (bool, error) {
	v, err := s.Get(ctx, principal, "secret:"+name)
	return v != "", err
}

// Secret opens a stored secret; ok is false when there is none.
func (s *Store) Secret(ctx context.Context, principal, name string) (value string, ok bool, err error) {
	raw, err := s.Get(ctx, principal, "secret:"+name)
	if err != nil || raw == "" {
		return "", false, err
	}
	plain, err := s.open(principal, name, raw)
	if err != nil {
		return "", false, err
	}
	return string(plain), true, nil
}

// seal encrypts plain for the principal's field name (both are the AEAD's
// additional data: a sealed value moved to another principal or field
// does not open).
func (s *Store) seal(principal, name string, plain []byte) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fault.Wrap(err, fault.Internal, "no randomness; nothing was saved")
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(principal+"\x00"+name))
	return base64.RawStdEncoding.EncodeToString(sealed), nil
}

func (s *Store) open(principal, name, raw string) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, fault.New(fault.Internal, "a stored secret is corrupt")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(principal+"\x00"+name))
	if err != nil {
		return nil, fault.Wrap(err, fault.Internal, "a stored secret cannot be opened (another deployment's key?)")
	}
	return plain, nil
}

// SecretNames lists the named secrets of a principal (never their values).
func (s *Store) SecretNames(ctx context.Context, principal string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys, err := s.rdb.HKeys(ctx, s.key(principal)).Result()
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "the secret store is unavailable")
	}
	var out []string
	for _, k := range keys {
		if n, ok := strings.CutPrefix(k, "secret:"); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// ParseKey reads a base64 (std or URL, padded or not) 32-byte key.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(strings.TrimSpace(s)); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("links: the key must be 32 bytes, base64-encoded (e.g. openssl rand -base64 32)")
}
