package tools

import (
	"encoding/json"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// TestArgRulesRefuseBeforeThePipeline: an argument outside its published
// rule is refused with invalid_argument before the pipeline runs (no
// idempotency key taken, no hold), and a good one goes through.
func TestArgRulesRefuseBeforeThePipeline(t *testing.T) {
	tests := []struct {
		name string
		tool Tool
		args map[string]any
		ok   bool
	}{
		{"idempotency key shorter than the documented 8", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com", "idempotency_key": "k1"}, false},
		{"idempotency key of 8", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com", "idempotency_key": "12345678"}, true},
		{"idempotency key over 255", SubscriptionStart(SubscriptionConfig{}), map[string]any{"plan": "starter", "idempotency_key": string(make([]byte, 256))}, false},
		{"idempotency key not a string", SubscriptionStart(SubscriptionConfig{}), map[string]any{"plan": "starter", "idempotency_key": 12345678}, false},
		{"years as a fraction", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com", "years": 1.5}, false},
		{"years above 10", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com", "years": json.Number("11")}, false},
		{"years as an integer", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com", "years": json.Number("2")}, true},
		{"ttl under Cloudflare's 60", DNSUpsert(), map[string]any{"zone": "a.com", "type": "A", "name": "www", "content": "192.0.2.1", "ttl": 30}, false},
		{"record type tollgate does not manage", DNSUpsert(), map[string]any{"zone": "a.com", "type": "NS", "name": "www", "content": "x"}, false},
		{"record type in lower case (the handler normalises it)", DNSUpsert(), map[string]any{"zone": "a.com", "type": "aaaa", "name": "www", "content": "2001:db8::1"}, true},
		{"ssl mode not offered", SSLConfigure(), map[string]any{"zone": "a.com", "mode": "strictest"}, false},
		{"no permissions", APITokenCreate(nil, nil), map[string]any{"zone": "a.com", "permissions": []any{}}, false},
		{"absent optional arguments", DomainRegister(RegisterConfig{}), map[string]any{"domain": "a.com"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkArgs(tc.tool, tc.args)
			if (err == nil) != tc.ok {
				t.Fatalf("checkArgs = %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				res := Refuse(err)
				b, _ := json.Marshal(res.StructuredContent)
				var body struct {
					Error ErrorBody `json:"error"`
				}
				_ = json.Unmarshal(b, &body)
				if !res.IsError || body.Error.Code != fault.InvalidArgument || body.Error.ProviderCalled {
					t.Fatalf("refusal %s", b)
				}
			}
		})
	}
}

// TestUnportableFindsWhatInspectorWarnsAbout: the portability check can fail.
func TestUnportableFindsWhatInspectorWarnsAbout(t *testing.T) {
	var v any
	_ = json.Unmarshal([]byte(`{"type":"object","properties":{"a":{"type":["null","array"]},"b":{"description":"anything"},"c":{"type":"string"}}}`), &v)
	if got := unportable(v, "s"); len(got) != 2 {
		t.Fatalf("found %v, want the type list of a and the keyword-less b", got)
	}
}

// TestRulesArePublished: a rule for an argument the tool does not take is
// a programming error caught when the definition is built.
func TestRulesArePublished(t *testing.T) {
	tool := DomainRegister(RegisterConfig{})
	tool.args = map[string]ArgRule{"yeers": intRule(1, 10)}
	if _, err := tool.published(); err == nil {
		t.Fatal("a rule for an unknown argument was accepted")
	}
}
