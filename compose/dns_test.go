//go:build !nosandbox

package compose_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestDNSAndSSLOnTheNamedZone: once the domain is a zone of the linked
// account, DNS and SSL change only the zone the token names.
func TestDNSAndSSLOnTheNamedZone(t *testing.T) {
	a, ts := newApp(t)
	// Both are zones of alice's linked account: only the token's
	// tollgate:resources keeps other-zone.com out.
	a.AddTestZone(t, alicePrincipal, "zone-demo.com")
	a.AddTestZone(t, alicePrincipal, "other-zone.com")
	tok := testkit.TaskToken(t, ts.URL, testkit.Grant{Scope: "dns:read dns:write ssl:write", Details: resources("zone-demo.com")})
	c := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})

	res, err := call(t, c, "dns_upsert", map[string]any{"zone": "zone-demo.com", "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true})
	if err != nil || res.IsError {
		t.Fatalf("dns_upsert: %v %v", err, structured(t, res))
	}
	if structured(t, res)["created"] != true {
		t.Fatal("first upsert did not create")
	}
	res, _ = call(t, c, "dns_upsert", map[string]any{"zone": "zone-demo.com", "type": "A", "name": "www", "content": "192.0.2.11", "proxied": true})
	if res.IsError || structured(t, res)["created"] != false {
		t.Fatalf("second upsert: %v", structured(t, res))
	}
	res, _ = call(t, c, "dns_list", map[string]any{"zone": "zone-demo.com"})
	recs := structured(t, res)["records"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["content"] != "192.0.2.11" {
		t.Fatalf("dns_list: %v", recs)
	}
	id := recs[0].(map[string]any)["id"].(string)

	res, _ = call(t, c, "ssl_configure", map[string]any{"zone": "zone-demo.com", "mode": "strict", "always_https": true, "min_tls": "1.2"})
	if res.IsError || structured(t, res)["mode"] != "strict" {
		t.Fatalf("ssl_configure: %v", structured(t, res))
	}

	refusals := []struct {
		name, tool string
		args       map[string]any
		code       string
	}{
		{"zone outside tollgate:resources", "dns_upsert", map[string]any{"zone": "other-zone.com", "type": "A", "name": "www", "content": "192.0.2.1"}, "resource_forbidden"},
		{"look-alike zone", "ssl_configure", map[string]any{"zone": "zone-dеmo.com", "mode": "strict"}, "lookalike_domain"},
		{"bad record type", "dns_upsert", map[string]any{"zone": "zone-demo.com", "type": "PTR", "name": "x", "content": "y"}, "invalid_argument"},
		{"bad ttl", "dns_upsert", map[string]any{"zone": "zone-demo.com", "type": "A", "name": "x", "content": "192.0.2.1", "ttl": 5.5}, "invalid_argument"},
		{"bad ssl mode", "ssl_configure", map[string]any{"zone": "zone-demo.com", "mode": "maximum"}, "invalid_argument"},
		{"record id of another zone", "dns_delete", map[string]any{"zone": "zone-demo.com", "id": "not-a-record"}, "not_found"},
	}
	for _, tc := range refusals {
		res, _ := call(t, c, tc.tool, tc.args)
		if code := errCode(t, res); code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, code, tc.code)
		}
	}
	res, _ = call(t, c, "dns_delete", map[string]any{"zone": "zone-demo.com", "id": id})
	if res.IsError {
		t.Fatalf("dns_delete: %v", structured(t, res))
	}
	readOnly := testkit.TaskToken(t, ts.URL, testkit.Grant{Agent: "reader", Scope: "dns:read", Details: resources("zone-demo.com")})
	hc := testkit.HTTP(t, ts.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(readOnly)})
	if _, err := call(t, hc, "dns_upsert", map[string]any{"zone": "zone-demo.com", "type": "A", "name": "x", "content": "192.0.2.1"}); err == nil {
		t.Fatal("dns:read token wrote a record")
	}
}
