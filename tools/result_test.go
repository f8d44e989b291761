package tools

import (
	"errors"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/tools/provider"
	"github.com/tollgate-dev/tollgate/tools/stripe"
)

// TestRefuseDerivesProviderCalled: provider_called comes from the error,
// never from the call site.
func TestRefuseDerivesProviderCalled(t *testing.T) {
	cfSent := fault.Wrap(&cloudflare.CallError{Op: "registration", HTTPStatus: 502, Reached: true}, cloudflare.ProviderError, "Cloudflare failed")
	cfUnsent := fault.Wrap(&cloudflare.CallError{Op: "registration", Reached: false}, cloudflare.ProviderError, "Cloudflare was not reached")
	stripeSent := fault.Wrap(&stripe.CallError{Op: "subscription_create", HTTPStatus: 500, Reached: true}, stripe.ProviderError, "Stripe failed")
	tests := []struct {
		name   string
		err    error
		code   fault.Code
		called bool
	}{
		{"a bad argument", fault.New(fault.InvalidArgument, "bad"), fault.InvalidArgument, false},
		{"a Go error of tollgate's own", errors.New("boom"), fault.Internal, false},
		{"Cloudflare answered 5xx", cfSent, cloudflare.ProviderError, true},
		{"Cloudflare never reached", cfUnsent, cloudflare.ProviderError, false},
		{"Stripe answered 5xx", stripeSent, stripe.ProviderError, true},
		{"created at the provider but not recorded", provider.AfterCall(fault.New(fault.Unavailable, "created but not recorded")), fault.Unavailable, true},
		{"a guard refusal after the quote reached Cloudflare", provider.BeforeCall(cfSent), cloudflare.ProviderError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Refuse(tt.err)
			b, ok := errorBody(res)
			if !res.IsError || !ok || b.Code != tt.code || b.ProviderCalled != tt.called {
				t.Fatalf("error body %+v (ok %v), want code %s, provider_called %v", b, ok, tt.code, tt.called)
			}
			text := res.Content[0].(mcp.TextContent).Text
			if said := strings.Contains(text, "no provider was called"); said == tt.called {
				t.Fatalf("text %q contradicts provider_called %v", text, tt.called)
			}
		})
	}
}
