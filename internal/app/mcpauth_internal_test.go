package app

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
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},` +
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
