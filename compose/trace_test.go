//go:build !nosandbox

package compose_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestTracesReachAnOTLPReceiver: with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// set, a tool call exports one span for the call and one per guard step,
// all in the client's trace (W3C traceparent), and the call's audit entry
// carries that trace id.
func TestTracesReachAnOTLPReceiver(t *testing.T) {
	var mu sync.Mutex
	spans := map[string]string{} // name -> trace id (hex)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("OTLP body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = hexID(s.TraceId)
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL+"/v1/traces")

	redisURL := testkit.RedisURL(t)
	a, ts := newAppOn(t, redisURL)
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "traced", Scope: "catalog:read"})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(metaCall("whoami")))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "whoami")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("whoami: %d", resp.StatusCode)
	}
	ts.Close()
	a.Close() // flushes the batched spans

	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"tools/call whoami", "guard.token", "guard.pre"} {
		id, ok := spans[name]
		if !ok {
			t.Errorf("no span %q exported; got %v", name, spans)
			continue
		}
		if id != traceID {
			t.Errorf("span %q is in trace %s, want the client's %s", name, id, traceID)
		}
	}
	b, _ := newAppOn(t, redisURL)
	found := false
	for _, e := range readAudit(t, b.Trail(), aliceP) {
		if e.Tool == "whoami" && e.TraceID == traceID {
			found = true
		}
	}
	if !found {
		t.Errorf("no whoami audit entry carries trace id %s", traceID)
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
