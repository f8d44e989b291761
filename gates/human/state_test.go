package human

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestSealOpenRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := State{
		Binding: call,
		Gates: []Gate{productionGate, {ID: "terms", Kind: Terms,
			Summary: "Accept the Cloudflare terms of service, version 2026-01 (https://www.cloudflare.com/terms/)\nReply yes to accept."}},
		Approval: "apr1",
		// Seal ignores these.
		ID: "mine", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	tok, err := f.sealer.Seal(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > MaxStateLen || !base64url(tok) {
		t.Fatalf("token %q is not bounded base64url", tok)
	}
	// Sealed, not signed: nothing of the state is readable in the token.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for _, s := range []string{"alice", "deploy_promote", "Promote", "apr1", call.ArgsDigest[:16]} {
		if strings.Contains(string(raw), s) || strings.Contains(tok, s) {
			t.Fatalf("token shows %q", s)
		}
	}
	out, err := f.sealer.Open(ctx, tok, call)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if out.Binding != call || !reflect.DeepEqual(out.Gates, in.Gates) || out.Approval != "apr1" {
		t.Fatalf("opened %+v, sealed %+v", out, in)
	}
	if len(out.ID) != 32 || out.ID == "mine" || !out.Issued.Equal(now) || !out.Expires.Equal(now.Add(DefaultStateTTL)) {
		t.Fatalf("id %q issued %v expires %v", out.ID, out.Issued, out.Expires)
	}
	// Two seals of the same state are different tokens with different ids.
	a, b := f.seal(call), f.seal(call)
	if a == b {
		t.Fatal("two seals gave the same token")
	}
	sa, _ := f.sealer.Open(ctx, a, call)
	sb, _ := f.sealer.Open(ctx, b, call)
	if sa.ID == sb.ID || sa.ID == "" {
		t.Fatalf("state ids %q and %q", sa.ID, sb.ID)
	}
}

// Every way an agent can answer for the human without a state this server
// sealed for exactly this call is refused, with its code, and leaves the
// genuine state usable (except a replay, which is the use).
func TestOpenRefusesAttacks(t *testing.T) {
	other := func(mod func(b *Binding)) Binding { b := call; mod(&b); return b }
	tests := []struct {
		name string
		// attack returns the token to present and the binding of the
		// retried call.
		attack func(t *testing.T, f *fixture, genuine string) (string, Binding)
		code   fault.Code
	}{
		{"inputResponses forged into the first call: no state at all", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return "", call
		}, StateInvalid},
		{"forged state: random bytes", func(t *testing.T, f *fixture, g string) (string, Binding) {
			b := make([]byte, len(g)*3/4)
			_, _ = rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b), call
		}, StateInvalid},
		{"forged state: random bytes with a genuine header", func(t *testing.T, f *fixture, g string) (string, Binding) {
			raw, _ := base64.RawURLEncoding.DecodeString(g)
			_, _ = rand.Read(raw[headerLen:])
			return base64.RawURLEncoding.EncodeToString(raw), call
		}, StateInvalid},
		{"truncated state", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g[:len(g)-4], call
		}, StateInvalid},
		{"truncated to the header", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g[:base64.RawURLEncoding.EncodedLen(headerLen+nonceLen)], call
		}, StateInvalid},
		{"bit-flipped state: ciphertext", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return flip(g, len(g)/2*6), call
		}, StateInvalid},
		{"bit-flipped state: binding tag", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return flip(g, 8*5), call
		}, StateInvalid},
		{"bit-flipped state: nonce", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return flip(g, 8*(headerLen+3)), call
		}, StateInvalid},
		{"bit-flipped state: GCM tag", func(t *testing.T, f *fixture, g string) (string, Binding) {
			raw, _ := base64.RawURLEncoding.DecodeString(g)
			raw[len(raw)-1] ^= 0x80
			return base64.RawURLEncoding.EncodeToString(raw), call
		}, StateInvalid},
		{"bit-flipped state: version", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return flip(g, 1), call
		}, StateInvalid},
		{"state with a newline: another spelling of the same bytes", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g[:10] + "\n" + g[10:], call
		}, StateInvalid},
		{"state with padding", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g + "=", call
		}, StateInvalid},
		{"state in standard base64", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return base64.StdEncoding.EncodeToString(mustDecode(t, g)), call
		}, StateInvalid},
		{"oversized state", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g + strings.Repeat("A", MaxStateLen), call
		}, StateInvalid},
		{"state from another deployment key", func(t *testing.T, f *fixture, g string) (string, Binding) {
			// Another tollgate on another Redis: its own key.
			foreign := newFixture(t)
			return foreign.seal(call), call
		}, StateInvalid},
		{"state from another deployment key with a known prefix", func(t *testing.T, f *fixture, g string) (string, Binding) {
			// Same Redis, another prefix: another deployment sharing the server.
			s, err := NewSealer(context.Background(), f.rdb, SealerConfig{Prefix: "staging", Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Seal(context.Background(), State{Binding: call, Gates: []Gate{productionGate}})
			if err != nil {
				t.Fatal(err)
			}
			return tok, call
		}, StateInvalid},
		{"replayed state", func(t *testing.T, f *fixture, g string) (string, Binding) {
			if _, err := f.sealer.Open(context.Background(), g, call); err != nil {
				t.Fatal(err)
			}
			return g, call
		}, StateReplayed},
		{"expired state", func(t *testing.T, f *fixture, g string) (string, Binding) {
			f.clock.Advance(DefaultStateTTL)
			return g, call
		}, StateExpired},
		{"expired state: long after", func(t *testing.T, f *fixture, g string) (string, Binding) {
			f.clock.Advance(30 * 24 * time.Hour)
			return g, call
		}, StateExpired},
		{"state from another session", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g, other(func(b *Binding) { b.Session = "s2" })
		}, StateMismatch},
		{"state for another tool", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g, other(func(b *Binding) { b.Tool = "domain_register" })
		}, StateMismatch},
		{"changed arguments", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g, other(func(b *Binding) { b.ArgsDigest = strings.Repeat("0", 64) })
		}, StateMismatch},
		{"another principal", func(t *testing.T, f *fixture, g string) (string, Binding) {
			return g, other(func(b *Binding) { b.Principal = bob })
		}, StateMismatch},
		{"fields shifted between binding parts", func(t *testing.T, f *fixture, g string) (string, Binding) {
			// The tag length-prefixes every field: "s1"+"deploy_promote" is
			// not "s1deploy"+"_promote".
			return g, other(func(b *Binding) { b.Session, b.Tool = "s1deploy", "_promote" })
		}, StateMismatch},
		{"state of another session presented in that session", func(t *testing.T, f *fixture, g string) (string, Binding) {
			// A genuine state bob's agent got, replayed by alice's agent.
			b := other(func(b *Binding) { b.Principal, b.Session = bob, "s9" })
			return f.seal(b), call
		}, StateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			genuine := f.seal(call)
			tok, want := tt.attack(t, f, genuine)
			st, err := f.sealer.Open(context.Background(), tok, want)
			wantCode(t, err, tt.code)
			if !reflect.DeepEqual(st, State{}) {
				t.Fatalf("a refused Open returned %+v", st)
			}
			if fault.PublicOf(err) == "" || strings.Contains(fault.PublicOf(err), "Promote") {
				t.Fatalf("public message %q", fault.PublicOf(err))
			}
			if tt.code == StateReplayed || tt.code == StateExpired {
				return
			}
			// No side effect: the genuine state still opens, once.
			if _, err := f.sealer.Open(context.Background(), genuine, call); err != nil {
				t.Fatalf("the genuine state no longer opens: %v", err)
			}
		})
	}
}

// The expiry instant itself is expired; a millisecond before it is not.
func TestStateExpiryBoundary(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	early, late := f.seal(call), f.seal(call)
	f.clock.Advance(DefaultStateTTL - time.Millisecond)
	_, err := f.sealer.Open(ctx, early, call)
	wantCode(t, err, "")
	f.clock.Advance(time.Millisecond)
	_, err = f.sealer.Open(ctx, late, call)
	wantCode(t, err, StateExpired)
}

func TestOpenIsOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	hook := &countHook{}
	f.rdb.AddHook(hook)
	ctx := context.Background()
	const calls = 20
	toks := make([]string, calls)
	for i := range toks {
		toks[i] = f.seal(call)
	}
	if n := hook.N.Load(); n != 0 {
		t.Fatalf("sealing took %d round trips, want none", n)
	}
	for _, tok := range toks {
		wantCode(t, func() error { _, err := f.sealer.Open(ctx, tok, call); return err }(), "")
	}
	if n := hook.N.Load(); n != calls {
		t.Fatalf("%d opens took %d round trips, want exactly one each", calls, n)
	}
	// A replay costs one too; forgeries and mismatches cost none.
	hook.N.Store(0)
	_, err := f.sealer.Open(ctx, toks[0], call)
	wantCode(t, err, StateReplayed)
	_, err = f.sealer.Open(ctx, flip(toks[1], 100), call)
	wantCode(t, err, StateInvalid)
	_, err = f.sealer.Open(ctx, f.seal(call), Binding{Principal: bob, Session: "s1", Tool: "t", ArgsDigest: "d"})
	wantCode(t, err, StateMismatch)
	if n := hook.N.Load(); n != 1 {
		t.Fatalf("refusals took %d round trips, want 1", n)
	}
}

func TestSealRefusesBadState(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("x", maxSummary)
	tests := []struct {
		name string
		st   State
	}{
		{"no binding", State{Gates: []Gate{productionGate}}},
		{"no session", State{Binding: Binding{Principal: alice, Tool: "t", ArgsDigest: "d"}, Gates: []Gate{productionGate}}},
		{"session with a colon", State{Binding: Binding{Principal: alice, Session: "a:b", Tool: "t", ArgsDigest: "d"}, Gates: []Gate{productionGate}}},
		{"principal with a control character", State{Binding: Binding{Principal: "user:a\x00", Session: "s", Tool: "t", ArgsDigest: "d"}, Gates: []Gate{productionGate}}},
		{"nothing asked", State{Binding: call}},
		{"unknown kind", State{Binding: call, Gates: []Gate{{ID: "g", Kind: "wire_money", Summary: "x"}}}},
		{"empty summary", State{Binding: call, Gates: []Gate{{ID: "g", Kind: Purchase}}}},
		{"bad gate id", State{Binding: call, Gates: []Gate{{ID: "a b", Kind: Purchase, Summary: "x"}}}},
		{"bad approval id", State{Binding: call, Approval: "../x"}},
		{"too many gates", State{Binding: call, Gates: make([]Gate, maxGates+1)}},
		{"too large to carry", State{Binding: call, Gates: []Gate{
			{ID: "a", Kind: Purchase, Summary: long}, {ID: "b", Kind: Purchase, Summary: long}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.sealer.Seal(context.Background(), tt.st)
			wantCode(t, err, fault.InvalidArgument)
		})
	}
	// Open validates the binding of the retried call too.
	_, err := f.sealer.Open(context.Background(), f.seal(call), Binding{Principal: alice})
	wantCode(t, err, fault.InvalidArgument)
}

func TestConfigValidation(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	for _, cfg := range []SealerConfig{{Prefix: "t{g}"}, {TTL: -1}, {TTL: time.Millisecond}, {Timeout: -1}} {
		if _, err := NewSealer(ctx, rdb, cfg); err == nil {
			t.Fatalf("NewSealer accepted %+v", cfg)
		}
	}
	for _, cfg := range []ApprovalsConfig{{Prefix: "a b"}, {TTL: -1}, {Retention: -1}, {Timeout: -1}} {
		if _, err := NewApprovals(rdb, cfg); err == nil {
			t.Fatalf("NewApprovals accepted %+v", cfg)
		}
	}
	if _, err := NewConsents(rdb, ConsentsConfig{Prefix: "}"}); err == nil {
		t.Fatal("NewConsents accepted a brace in the prefix")
	}
	if _, err := NewSealer(ctx, nil, SealerConfig{}); err == nil {
		t.Fatal("NewSealer accepted a nil client")
	}
}

// flip returns tok with bit i of its decoded bytes inverted.
func flip(tok string, bit int) string {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		panic(err)
	}
	raw[bit/8%len(raw)] ^= 1 << (bit % 8)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func mustDecode(t *testing.T, tok string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
