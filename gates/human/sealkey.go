package human

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// masterKeyLen is the size of the shared key in Redis: 256 bits.
const masterKeyLen = 32

// sealKey is the key material derived from the master key in Redis.
type sealKey struct {
	stored string      // the master key as stored in Redis (standard base64)
	aead   cipher.AEAD // AES-256-GCM
	bind   []byte      // HMAC-SHA256 key of binding tags
}

// HKDF labels: one master key, two independent subkeys.
const (
	infoAEAD = "tollgate gates/human state aead v1"
	infoBind = "tollgate gates/human state binding v1"
)

func deriveKey(stored string) (*sealKey, error) {
	master, err := base64.StdEncoding.Strict().DecodeString(stored)
	if err != nil || len(master) != masterKeyLen {
		return nil, fmt.Errorf("the value is not %d bytes of standard base64", masterKeyLen)
	}
	ek, err := hkdf.Key(sha256.New, master, nil, infoAEAD, 32)
	if err != nil {
		return nil, err
	}
	bk, err := hkdf.Key(sha256.New, master, nil, infoBind, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealKey{stored: stored, aead: aead, bind: bk}, nil
}

// tag is the keyed digest of a binding that goes, as additional data, into
// every state sealed for it. The fields are length-prefixed, so no two
// bindings share an encoding.
func (k *sealKey) tag(b Binding) []byte {
	m := hmac.New(sha256.New, k.bind)
	var buf []byte
	for _, f := range []string{b.Principal, b.Session, b.Tool, b.ArgsDigest} {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(f)))
		buf = append(buf, f...)
	}
	m.Write(buf)
	return m.Sum(nil)
}

// loadKey creates the shared master key if there is none (SET NX: the
// first replica wins) and returns the one in Redis, in one round trip. A
// value that is not a key is never overwritten: the Sealer refuses to start
// and the operator decides.
func (s *Sealer) loadKey(ctx context.Context) (*sealKey, error) {
	var fresh [masterKeyLen]byte
	_, _ = rand.Read(fresh[:])
	name := s.keys.sealKey()
	var get *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, name, base64.StdEncoding.EncodeToString(fresh[:]), 0)
		get = p.Get(ctx, name)
		return nil
	})
	if err != nil {
		return nil, unavailable("load seal key", err, msgKeyDown)
	}
	k, err := deriveKey(get.Val())
	if err != nil {
		return nil, fault.Wrap(fmt.Errorf("human: seal key %s: %w", name, err), fault.Internal,
			"the gate store holds a malformed sealing key, so no gate can be asked; nothing was charged or changed. "+
				"The operator must delete the key "+name+" (outstanding gates then ask again).")
	}
	return k, nil
}

// reload adopts the key now in Redis, creating a fresh one when it is gone
// (a flushed or replaced Redis). It is called when Open finds that the key
// in Redis is not the one it holds: states sealed before are refused from
// then on, because their single-use marks may have been lost with the key.
func (s *Sealer) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.loadKey(ctx)
	if err != nil {
		return err
	}
	s.key.Store(k)
	return nil
}

var errNoClient = errors.New("human: needs a Redis client")
