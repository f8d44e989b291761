package sessions

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestAuditExportRoundTrip(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	a := newAudit(t, rdb, clk, AuditConfig{})
	ctx := context.Background()
	price := money.USD(1044)
	in := []Entry{
		{Event: "exchange", Principal: alice, Actors: []string{agent, "user:alice@example.com"}, ClientID: agent,
			Session: "s1", JTI: "jti-1", Decision: DecisionAllow, PolicyIDs: []string{"sha256:ab12"}},
		{Event: "hold", Principal: alice, Actors: []string{agent}, Session: "s2", ParentSession: "s1",
			Tool: "domain_register", ArgsDigest: DigestArgs([]byte(`{"domain":"example.dev"}`)),
			Decision: DecisionOK, Amount: &price, Provider: "cloudflare", ProviderRequestID: "8c2f-cf-ray",
			Detail: map[string]string{"hold_id": "h1", "month": "2030-01"}, Reason: `quotes " and <tags> & unicode ✓`},
		{Event: "tool_call", Principal: bob, Session: "s3", Tool: "dns_record_set", Decision: DecisionDeny,
			Code: "insufficient_scope", Time: clk.Now().Add(time.Hour)},
	}
	var want []Entry
	for _, e := range in {
		clk.Advance(time.Millisecond)
		got, err := a.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got)
	}

	tests := []struct {
		name   string
		filter ExportFilter
		want   []Entry
	}{
		{"everything", ExportFilter{}, want},
		{"one session", ExportFilter{Session: "s2"}, want[1:2]},
		{"one principal", ExportFilter{Principal: alice}, want[:2]},
		{"since", ExportFilter{Since: want[2].Time}, want[2:]},
		{"nothing matches", ExportFilter{Session: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := a.Export(ctx, &buf, tc.filter)
			if err != nil || n != len(tc.want) {
				t.Fatalf("export = %d, %v; want %d", n, err, len(tc.want))
			}
			var got []Entry
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				var e Entry
				dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				got = append(got, e)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("exported\n%+v\nwant\n%+v", got, tc.want)
			}
			// An exported entry still hashes to its hash: the export can be
			// checked away from Redis.
			for _, e := range got {
				body, _ := canonical(e)
				if chainHash(e.Prev, body) != e.Hash {
					t.Fatalf("exported entry %s does not hash to its hash", e.ID)
				}
			}
		})
	}
}
