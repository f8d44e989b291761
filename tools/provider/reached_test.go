package provider

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// callError stands in for an adapter's CallError.
type callError struct{ reached bool }

func (e *callError) Error() string        { return fmt.Sprintf("call: reached %v", e.reached) }
func (e *callError) MayHaveReached() bool { return e.reached }

var _ Error = (*callError)(nil)

func TestReached(t *testing.T) {
	sent, notSent := &callError{reached: true}, &callError{reached: false}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"an error of tollgate's own reached nothing", errors.New("redis: connection refused"), false},
		{"a fault without a provider cause", fault.New(fault.InvalidArgument, "bad"), false},
		{"a request that went out", sent, true},
		{"a request that was never sent", notSent, false},
		{"wrapped with %w", fmt.Errorf("register: %w", sent), true},
		{"wrapped in a fault", fault.Wrap(sent, "provider_error", "Cloudflare did not answer"), true},
		{"an unsent request stays unsent when wrapped", fault.Wrap(notSent, "provider_error", "not reached"), false},
		{"a store failure after the provider created something", AfterCall(fault.New(fault.Unavailable, "created but not recorded")), true},
		{"after a call, whatever the cause says", AfterCall(notSent), true},
		{"a guard refusal after a quote read from the provider", BeforeCall(fault.Wrap(sent, "provider_error", "quote failed")), false},
		{"the outermost mark decides", AfterCall(BeforeCall(sent)), true},
		{"a mark survives a wrapping fault", fault.Wrap(BeforeCall(sent), fault.Internal, "x"), false},
		{"joined: the first that says", errors.Join(errors.New("x"), sent), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reached(tt.err); got != tt.want {
				t.Fatalf("Reached(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestMarksKeepTheError(t *testing.T) {
	if AfterCall(nil) != nil || BeforeCall(nil) != nil {
		t.Fatal("a mark on no error is an error")
	}
	inner := fault.New(fault.Unavailable, "created but not recorded")
	for _, err := range []error{AfterCall(inner), BeforeCall(inner)} {
		if fault.CodeOf(err) != fault.Unavailable || fault.PublicOf(err) != inner.Public || !errors.Is(err, inner) || err.Error() != inner.Error() {
			t.Fatalf("mark changed the error: code %s, public %q, %v", fault.CodeOf(err), fault.PublicOf(err), err)
		}
	}
}
