package human

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxStateLen bounds a sealed state, in characters. Open refuses anything
// longer before decoding it; Seal refuses to make one.
const MaxStateLen = 8 << 10

// usedMargin keeps a state's single-use mark this long past the state's
// expiry, so that a replica whose clock runs behind, and still takes the
// state for unexpired, also still finds the mark.
const usedMargin = time.Minute

// Token layout (before base64url, no padding):
//
//	version(1) ‖ binding tag(32) ‖ nonce(12) ‖ AES-256-GCM ciphertext ‖ GCM tag(16)
//
// The additional data is adPrefix ‖ version ‖ binding tag, where the binding
// tag is HMAC-SHA256 of the binding under a key derived from the shared
// master key. So the binding is authenticated twice: by the additional data
// and inside the sealed JSON. Because the tag is in the clear (it reveals
// nothing without the key), Open can authenticate a state before knowing
// its binding, and tell a genuine state for another binding
// (state_mismatch) from a forgery (state_invalid).
const (
	tokenVersion = 1
	tagLen       = sha256Size
	nonceLen     = 12
	gcmTagLen    = 16
	headerLen    = 1 + tagLen
	minRawLen    = headerLen + nonceLen + gcmTagLen
	adPrefix     = "tollgate/gates/human/state\x00"
	sha256Size   = 32
)

// State is what a gate remembers between the question and the answer, for
// MCP 2026-07-28 multi-round-trip requests (requestState).
type State struct {
	// Binding is what the answer is bound to. Required.
	Binding Binding
	// Gates are the questions asked and exactly what was shown (1-8).
	Gates []Gate
	// Approval is an optional approval id the flow waits on.
	Approval string
	// ID, Issued and Expires are set by Seal and reported by Open; Seal
	// ignores what the caller puts there. ID is 128 random bits in hex.
	ID      string
	Issued  time.Time
	Expires time.Time
}

// payload is the sealed JSON.
type payload struct {
	V        int     `json:"v"`
	ID       string  `json:"id"`
	Binding  Binding `json:"b"`
	Gates    []Gate  `json:"g,omitempty"`
	Approval string  `json:"ap,omitempty"`
	Issued   int64   `json:"iat"`
	Expires  int64   `json:"exp"`
}

// Sealer seals gate state for the client to carry between round trips and
// opens it, once, when the client answers. The AEAD key is shared by every
// replica through Redis (see NewSealer). It is safe for concurrent use.
type Sealer struct {
	rdb  redis.UniversalClient
	cfg  SealerConfig
	keys keyspace
	key  atomic.Pointer[sealKey]
	mu   sync.Mutex // serialises reloads of key
}

// NewSealer returns a Sealer on rdb. It loads the shared sealing key from
// Redis (<prefix>:gates:sealkey), creating a random 256-bit key with SET NX
// when there is none, so that every replica on the same Redis seals and
// opens with the same key.
//
// The key protects gate state against agents and clients, which only ever
// see sealed states. It does not protect against anyone who can read Redis:
// they can read the key. Rotate it by deleting the key; every replica
// notices at its next Open, adopts the new key, and every state sealed
// before is refused (state_invalid) and asked again.
//
// Redis errors are fault.Unavailable; a value under the key that is not a
// key is fault.Internal and is never overwritten.
func NewSealer(ctx context.Context, rdb redis.UniversalClient, cfg SealerConfig) (*Sealer, error) {
	if rdb == nil {
		return nil, errNoClient
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sealer{rdb: rdb, cfg: cfg, keys: keyspace{prefix: cfg.Prefix}}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	k, err := s.loadKey(ctx)
	if err != nil {
		return nil, err
	}
	s.key.Store(k)
	return s, nil
}

// Seal returns st sealed for the client: base64url of nonce and AES-256-GCM
// ciphertext of st as JSON with a fresh random state id, the issue time and
// the expiry (now + TTL), authenticated together with st.Binding. It does
// not touch Redis. It refuses (fault.InvalidArgument) a state without a
// valid binding, with no gate and no approval, or too large to seal.
func (s *Sealer) Seal(_ context.Context, st State) (string, error) {
	if err := st.Binding.validate(); err != nil {
		return "", err
	}
	if len(st.Gates) == 0 && st.Approval == "" {
		return "", invalid("a gate state records at least one gate or an approval id; nothing was charged or changed.")
	}
	if len(st.Gates) > maxGates {
		return "", invalid("a gate state records at most %d gates; nothing was charged or changed.", maxGates)
	}
	for _, g := range st.Gates {
		if err := g.validate(); err != nil {
			return "", err
		}
	}
	if st.Approval != "" && !validID(st.Approval) {
		return "", invalid("the approval id must match [A-Za-z0-9._~-]{1,%d}; nothing was charged or changed.", maxID)
	}
	now := s.cfg.Now()
	var id [16]byte
	_, _ = rand.Read(id[:])
	p := payload{V: tokenVersion, ID: hex.EncodeToString(id[:]), Binding: st.Binding, Gates: st.Gates,
		Approval: st.Approval, Issued: ms(now), Expires: ms(now.Add(s.cfg.TTL))}
	pt, err := json.Marshal(p)
	if err != nil {
		return "", internal("seal", "%v", err)
	}
	k := s.key.Load()
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(pt)+gcmTagLen)
	out[0] = tokenVersion
	copy(out[1:headerLen], k.tag(st.Binding))
	// NIST SP 800-38D §8.2.2: random 96-bit nonces; §8.3 allows 2^32 of
	// them per key, far beyond the gates one deployment asks before an
	// operator rotates the key.
	_, _ = rand.Read(out[headerLen : headerLen+nonceLen])
	out = k.aead.Seal(out, out[headerLen:headerLen+nonceLen], pt, additionalData(out[:headerLen]))
	tok := base64.RawURLEncoding.EncodeToString(out)
	if len(tok) > MaxStateLen {
		return "", invalid("the gate state would be %d characters, more than the %d a client is asked to carry; shorten the summaries. Nothing was charged or changed.",
			len(tok), MaxStateLen)
	}
	return tok, nil
}

// Open checks a state the client sent back and returns what was sealed in
// it. It succeeds at most once per state, across every replica on the same
// Redis: success marks the state's id used (SET NX, kept for the state's
// remaining lifetime plus a minute).
//
// Refusals, in the order they are checked:
//   - state_invalid: empty, longer than MaxStateLen, not base64url,
//     truncated, forged or tampered with (AEAD fails), sealed under
//     another deployment's key, or under a key since replaced in Redis;
//   - state_mismatch: genuine, but sealed for another principal, session,
//     tool or arguments digest than want;
//   - state_expired: genuine, but now (the Sealer's clock) is at or past
//     its expiry;
//   - state_replayed: genuine, and already opened once.
//
// A Redis error or timeout is fault.Unavailable: the answer is not
// accepted, and the state may have been marked used, so the caller asks
// again rather than retry with it. Every refusal but Unavailable costs no Redis round trip or one;
// success costs exactly one.
func (s *Sealer) Open(ctx context.Context, token string, want Binding) (State, error) {
	if err := want.validate(); err != nil {
		return State{}, err
	}
	// Untrusted input: bound it before decoding anything.
	if len(token) < base64.RawURLEncoding.EncodedLen(minRawLen) || len(token) > MaxStateLen || !base64url(token) {
		return State{}, refuse(errStateInvalid)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < minRawLen || raw[0] != tokenVersion {
		return State{}, refuse(errStateInvalid)
	}
	k := s.key.Load()
	header, nonce, sealed := raw[:headerLen], raw[headerLen:headerLen+nonceLen], raw[headerLen+nonceLen:]
	pt, err := k.aead.Open(nil, nonce, sealed, additionalData(header))
	if err != nil {
		return State{}, refuse(errStateInvalid)
	}
	// Authentic from here on: this deployment sealed it. SPEC §8: the
	// state is bound to principal, session, tool and arguments digest.
	if !hmac.Equal(header[1:], k.tag(want)) {
		return State{}, refuse(errStateMismatch)
	}
	var p payload
	if err := json.Unmarshal(pt, &p); err != nil || p.V != tokenVersion || len(p.ID) != 32 {
		return State{}, internal("open", "an authentic state does not decode: %v", err)
	}
	if p.Binding != want {
		return State{}, refuse(errStateMismatch)
	}
	// SPEC §8: a late accept after expiry is refused; the expiry instant
	// itself is expired.
	now := s.cfg.Now()
	expires := time.UnixMilli(p.Expires)
	if !now.Before(expires) {
		return State{}, refuse(errStateExpired)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// One round trip: mark the id used, and read the shared key to make
	// sure it is still the one this state was sealed under. If Redis lost
	// the key (a flush, a new Redis) it lost the used marks too, and a
	// replayed state could pass; so states sealed before are refused.
	var set *redis.BoolCmd
	var get *redis.StringCmd
	_, _ = s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		set = pl.SetNX(ctx, s.keys.used(want.Principal, p.ID), ms(now), expires.Sub(now)+usedMargin)
		get = pl.Get(ctx, s.keys.sealKey())
		return nil
	})
	if err := set.Err(); err != nil {
		return State{}, unavailable("open", err, msgGateDown)
	}
	if err := get.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return State{}, unavailable("open", err, msgGateDown)
	}
	if subtle.ConstantTimeCompare([]byte(get.Val()), []byte(k.stored)) != 1 {
		if err := s.reload(ctx); err != nil {
			return State{}, err
		}
		return State{}, refuse(errStateStale)
	}
	// SPEC §8: single-use, recorded server-side.
	if !set.Val() {
		return State{}, refuse(errStateReplayed)
	}
	return State{Binding: p.Binding, Gates: p.Gates, Approval: p.Approval, ID: p.ID,
		Issued: time.UnixMilli(p.Issued).UTC(), Expires: expires.UTC()}, nil
}

func additionalData(header []byte) []byte {
	return append([]byte(adPrefix), header...)
}

// base64url reports whether s uses only the unpadded base64url alphabet:
// the decoder would otherwise skip newlines, so two strings could open the
// same state.
func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
