package edge

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBoundInitialize: a legacy session keeps at most a few short strings
// of what its client says about itself, however large the body.
func TestBoundInitialize(t *testing.T) {
	huge := strings.Repeat("x", 500_000)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
		`"capabilities":{"elicitation":{"form":{},"url":{"x":"` + huge + `"}},"experimental":{"x":"` + huge + `"},"extensions":{"y":"` + huge + `"}},` +
		`"_meta":{"z":"` + huge + `"},` +
		`"clientInfo":{"name":"` + huge + `","version":"1.0","title":"t\u0000itle","icons":[{"src":"` + huge + `"}],"extra":"` + huge + `"}}}`
	r := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
	boundInitialize(r)
	out, _ := io.ReadAll(r.Body)
	if len(out) > 2048 || r.ContentLength != int64(len(out)) {
		t.Fatalf("rewritten initialize is %d bytes (Content-Length %d)", len(out), r.ContentLength)
	}
	var msg struct {
		ID     int    `json:"id"`
		Method string `json:"method"`
		Params struct {
			ProtocolVersion string            `json:"protocolVersion"`
			ClientInfo      map[string]string `json:"clientInfo"`
		} `json:"params"`
	}
	if err := json.Unmarshal(out, &msg); err != nil {
		t.Fatalf("rewritten body is not JSON: %v", err)
	}
	var caps struct {
		Params struct {
			Capabilities map[string]map[string]any `json:"capabilities"`
			Meta         any                       `json:"_meta"`
		} `json:"params"`
	}
	_ = json.Unmarshal(out, &caps)
	c := caps.Params.Capabilities
	if c["experimental"] != nil || c["extensions"] != nil || caps.Params.Meta != nil {
		t.Fatalf("unbounded capabilities or params kept: %s", out)
	}
	if _, ok := c["elicitation"]["form"]; !ok {
		t.Fatalf("the elicitation capability was lost: %s", out)
	}
	ci := msg.Params.ClientInfo
	if msg.ID != 1 || msg.Method != "initialize" || msg.Params.ProtocolVersion != "2025-11-25" {
		t.Fatalf("the rest of the request changed: %s", out)
	}
	if len(ci) != 3 || len(ci["name"]) > maxClientInfo+4 || ci["version"] != "1.0" || ci["title"] != "t itle" {
		t.Fatalf("clientInfo kept: %v", ci)
	}
	// A body that is not an initialize object is left for the server to refuse.
	r = httptest.NewRequest("POST", "/mcp", strings.NewReader("[1,2"))
	boundInitialize(r)
	if out, _ := io.ReadAll(r.Body); string(out) != "[1,2" {
		t.Fatalf("malformed body changed to %q", out)
	}
}

func TestScanCallReadsAPrefix(t *testing.T) {
	tests := []struct {
		body, method, name string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, "tools/call", "whoami"},
		{`{"params":{"arguments":{"name":"decoy","x":[1,{"name":"decoy2"}]},"name":"domain_register"},"method":"tools/call"}`, "tools/call", "domain_register"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"dns_set","arguments":{"records":[`, "tools/call", "dns_set"},
		{`{"jsonrpc":"2.0","id":1,"meth`, "", ""},
		{`[{"method":"tools/call","params":{"name":"x"}}]`, "", ""},
		{`{"method":{"name":"x"},"params":"name"}`, "", ""},
	}
	for _, tc := range tests {
		c := scanCall([]byte(tc.body))
		if c.Method != tc.method || c.Params.Name != tc.name {
			t.Errorf("scanCall(%s) = %q %q, want %q %q", tc.body, c.Method, c.Params.Name, tc.method, tc.name)
		}
	}
}
