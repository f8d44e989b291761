package tools

import (
	"log/slog"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
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

// What a paid call's settle commits: the reported charge within the hold;
// after an unknown outcome the whole hold; a charge marked Unknown (the
// handler's note only) never decides the amount, so a definite refusal
// still releases the hold.
func TestCommittedAmount(t *testing.T) {
	usd := func(m int64) money.Money { return money.Money{Minor: m, Currency: "usd"} }
	held := &Hold{ID: "h1", Held: usd(1117)}
	refusal := func(code fault.Code, called bool) *mcp.CallToolResult {
		return &mcp.CallToolResult{IsError: true, StructuredContent: map[string]any{"error": ErrorBody{Code: code, ProviderCalled: called}}}
	}
	ok := &mcp.CallToolResult{}
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name   string
		charge *Charge
		res    *mcp.CallToolResult
		want   int64 // -1: released
	}{
		{"reported charge", &Charge{Amount: usd(999)}, ok, 999},
		{"reported above the hold: the hold", &Charge{Amount: usd(5000)}, ok, 1117},
		{"reported in another currency: the hold", &Charge{Amount: money.Money{Minor: 1, Currency: "eur"}}, ok, 1117},
		{"no charge, unknown outcome after the provider", nil, refusal(cloudflare.ProviderError, true), 1117},
		{"no charge, unknown outcome before the provider", nil, refusal(cloudflare.ProviderError, false), -1},
		{"no charge, definite refusal", nil, refusal(cloudflare.ProviderRefused, true), -1},
		{"unknown charge, unknown outcome", &Charge{Unknown: true, Amount: usd(1), Note: "a/x.com"}, refusal(cloudflare.ActionRequired, true), 1117},
		{"unknown charge, definite refusal", &Charge{Unknown: true, Amount: usd(1), Note: "a/x.com"}, refusal(cloudflare.ProviderRefused, true), -1},
		{"no charge, success", nil, ok, -1},
	} {
		got, _, _ := committed(log, held, c.charge, c.res)
		switch {
		case c.want < 0 && got != nil:
			t.Errorf("%s: committed %v, want the hold released", c.name, *got)
		case c.want >= 0 && (got == nil || *got != usd(c.want)):
			t.Errorf("%s: committed %v, want %d", c.name, got, c.want)
		}
	}
}
