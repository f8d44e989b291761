package tools

import (
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
	"github.com/tollgate-dev/tollgate/tools/stripe"
)

// A provider failure whose outcome is unknown keeps the held money
// counted, from either provider.
func TestOutcomeUnknownCoversBothProviders(t *testing.T) {
	for _, c := range []fault.Code{cloudflare.ProviderError, stripe.ProviderError, cloudflare.ActionRequired, fault.Internal, fault.Unavailable} {
		if !outcomeUnknown(c) {
			t.Errorf("%s: the held amount would be released although the provider may have charged", c)
		}
	}
	for _, c := range []fault.Code{cloudflare.ProviderRefused, stripe.ProviderRefused, cloudflare.DomainUnavailable} {
		if outcomeUnknown(c) {
			t.Errorf("%s: a definite refusal would stay counted", c)
		}
	}
}
