package human

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// FuzzOpen: Open never panics and never accepts anything but the one state
// it sealed, whatever the client sends as requestState.
func FuzzOpen(f *testing.F) {
	rdb := testkit.Redis(f)
	f.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	s, err := NewSealer(context.Background(), rdb, SealerConfig{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := s.Seal(context.Background(), State{Binding: call, Gates: []Gate{productionGate}})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(genuine)
	f.Add(genuine[:len(genuine)-1])
	f.Add(genuine + "A")
	f.Add(flip(genuine, 9))
	f.Add(flip(genuine, 8*len(raw)-1))
	f.Add(base64.RawURLEncoding.EncodeToString(raw[:minRawLen]))
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, minRawLen+40)))
	f.Add("")
	f.Add("=")
	f.Add(strings.Repeat("_", MaxStateLen+1))
	f.Add(`{"v":1,"id":"00000000000000000000000000000000"}`)
	f.Fuzz(func(t *testing.T, token string) {
		if token == genuine {
			return
		}
		st, err := s.Open(context.Background(), token, call)
		if err == nil {
			t.Fatalf("Open accepted %q: %+v", token, st)
		}
		if c := fault.CodeOf(err); c != StateInvalid {
			t.Fatalf("Open(%q): %v, want state_invalid", token, err)
		}
	})
}
