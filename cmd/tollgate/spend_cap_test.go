package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestSpendCapSetAndShow: a cap set with the CLI is stored in Redis, shown
// by cap show, applied by spend show (the same ledger the server uses),
// and audited with the old and the new cap; bad input exits 2 and changes
// nothing.
func TestSpendCapSetAndShow(t *testing.T) {
	url := testkit.RedisURL(t)
	out, errOut, code := runBin(t, nil, "spend", "cap", "set", "--principal", alicePrincipal, "--provider", "cloudflare", "150.00", "--redis-url", url, "--json")
	if code != exitOK {
		t.Fatalf("cap set: exit %d\n%s", code, errOut)
	}
	var ch struct {
		From, To struct {
			Minor int64 `json:"amount_minor"`
		}
	}
	if err := json.Unmarshal([]byte(out), &ch); err != nil || ch.From.Minor != 10000 || ch.To.Minor != 15000 {
		t.Fatalf("cap set --json = %s (%v); want from 100.00 to 150.00", out, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown provider", []string{"--provider", "aws", "1.00"}, "--provider"},
		{"negative", []string{"--provider", "stripe", "--", "-1"}, "negative"},
		{"not a number", []string{"--provider", "stripe", "ten"}, "no cap was changed"},
	} {
		args := append([]string{"spend", "cap", "set", "--principal", alicePrincipal, "--redis-url", url}, tc.args...)
		if _, errOut, code := runBin(t, nil, args...); code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 naming %q", tc.name, code, errOut, tc.want)
		}
	}
	out, errOut, code = runBin(t, nil, "spend", "cap", "show", "--redis-url", url, "--json")
	var caps []struct {
		Principal, Provider string
		Cap                 struct {
			Minor int64 `json:"amount_minor"`
		}
	}
	if code != exitOK || json.Unmarshal([]byte(out), &caps) != nil || len(caps) != 1 ||
		caps[0].Principal != alicePrincipal || caps[0].Provider != "cloudflare" || caps[0].Cap.Minor != 15000 {
		t.Fatalf("cap show: exit %d, %s %s; want alice's cloudflare cap of 150.00 only", code, out, errOut)
	}
	out, errOut, code = runBin(t, nil, "spend", "show", "--principal", alicePrincipal, "--redis-url", url, "--json")
	if code != exitOK || !strings.Contains(out, `"display": "150.00 USD"`) && !strings.Contains(out, `"display":"150.00 USD"`) {
		t.Fatalf("spend show after cap set: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = runBin(t, nil, "audit", "export", "--redis-url", url)
	if !strings.Contains(out, "cap_set") || !strings.Contains(out, "150.00") {
		t.Fatalf("the cap change is not in the audit trail:\n%s", out)
	}
}
