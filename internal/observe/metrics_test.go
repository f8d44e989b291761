package observe

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Unknown tool names and codes never become label values.
func TestToolLabelsBounded(t *testing.T) {
	o := New(Config{Version: "test", Mode: "sandbox"})
	o.KnowTools("whoami")
	o.ToolCall("whoami", OutcomeOK, "")
	for i := 0; i < 50; i++ {
		o.ToolCall("probe-"+string(rune('a'+i%26)), OutcomeRefused, "no_such_code_"+string(rune('a'+i%26)))
	}
	if got := testutil.ToFloat64(o.toolCalls.WithLabelValues("whoami", OutcomeOK, "")); got != 1 {
		t.Fatalf("whoami ok = %v, want 1", got)
	}
	if got := testutil.ToFloat64(o.toolCalls.WithLabelValues(Other, OutcomeRefused, Other)); got != 50 {
		t.Fatalf("other refused other = %v, want 50", got)
	}
	if n := testutil.CollectAndCount(o.toolCalls); n != 2 {
		t.Fatalf("tool call series = %d, want 2", n)
	}
}
