package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

func ptr[T any](v T) *T { return &v }

func TestUpsertCreatesThenUpdates(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	z := ensureZone(t, f, "shop.com")

	rec, created, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", Proxied: ptr(true)})
	if err != nil || !created {
		t.Fatalf("create: %+v %v %v", rec, created, err)
	}
	if rec.Name != "www.shop.com" || rec.Type != TypeA || rec.Content != "192.0.2.1" || !rec.Proxied || rec.TTL != TTLAuto || rec.ZoneID != z.ID || rec.RayID == "" {
		t.Fatalf("created %+v", rec)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/zones/"+z.ID || reqs[1].Path != "/zones/"+z.ID+"/dns_records" ||
		reqs[2].Method != http.MethodPost || reqs[2].RayID != rec.RayID {
		t.Fatalf("requests %+v", reqs)
	}
	var body map[string]any
	_ = json.Unmarshal(reqs[2].Body, &body)
	if body["type"] != "A" || body["name"] != "www.shop.com" || body["content"] != "192.0.2.1" || body["proxied"] != true || body["ttl"] != 1.0 {
		t.Fatalf("POST body %s", reqs[2].Body)
	}

	// The same record again: nothing to write.
	same, created, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "a", Name: "WWW.shop.com.", Content: "192.0.2.1", Proxied: ptr(true)})
	if err != nil || created || same.ID != rec.ID || writes(f) != 1 {
		t.Fatalf("repeat: %+v %v %v, %d writes", same, created, err, writes(f))
	}

	up, created, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "www.shop.com", Content: "192.0.2.7", TTL: 300, Proxied: ptr(false)})
	if err != nil || created || up.ID != rec.ID || up.Content != "192.0.2.7" || up.TTL != 300 || up.Proxied {
		t.Fatalf("update: %+v %v %v", up, created, err)
	}
	last := f.Requests()[len(f.Requests())-1]
	if last.Method != http.MethodPatch || last.Path != "/zones/"+z.ID+"/dns_records/"+rec.ID {
		t.Fatalf("update sent %s %s", last.Method, last.Path)
	}
	if stored := f.Records(z.ID); len(stored) != 1 || stored[0].Content != "192.0.2.7" || stored[0].TTL != 300 {
		t.Fatalf("fake holds %+v", stored)
	}
	allFromServer(t, f)
}

func TestUpsertKinds(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	z := ensureZone(t, f, "shop.com")

	mx, created, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "MX", Name: "@", Content: "Mail.Example.com."})
	if err != nil || !created || mx.Name != "shop.com" || mx.Content != "mail.example.com" || mx.Priority != DefaultMXPriority {
		t.Fatalf("MX %+v %v", mx, err)
	}
	if _, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "AAAA", Name: "@", Content: "2001:DB8::0:1"}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "CNAME", Name: "blog", Content: "shop.pages.dev", Proxied: ptr(true)}); err != nil || !r.Proxied {
		t.Fatalf("CNAME %+v %v", r, err)
	}
	if r, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "*.shop.com", Content: "192.0.2.3"}); err != nil || r.Name != "*.shop.com" {
		t.Fatalf("wildcard %+v %v", r, err)
	}

	// Two TXT records of one name: the one with the content is found, a
	// third content is ambiguous.
	for _, v := range []string{"v=spf1 -all", "google-site-verification=abc"} {
		if _, err := f.PutRecord(z.ID, cffake.DNSRecord{Type: "TXT", Name: "@", Content: v}); err != nil {
			t.Fatal(err)
		}
	}
	before := writes(f)
	if r, created, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "TXT", Name: "@", Content: "v=spf1 -all"}); err != nil || created || r.Content != "v=spf1 -all" {
		t.Fatalf("matching TXT %+v %v", r, err)
	}
	_, _, err = c.UpsertDNS(ctx, z.ID, RecordInput{Type: "TXT", Name: "@", Content: "v=spf1 include:_spf.example.com -all"})
	wantCode(t, err, AmbiguousRecord)
	if writes(f) != before {
		t.Fatal("an ambiguous upsert wrote")
	}

	// Cloudflare's own refusal (a CNAME beside another record) is passed on.
	_, _, err = c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "blog", Content: "192.0.2.1"})
	wantCode(t, err, ProviderRefused)
	if !strings.Contains(fault.PublicOf(err), "81053") || !strings.Contains(fault.PublicOf(err), "nothing was changed") {
		t.Fatalf("conflict message %q", fault.PublicOf(err))
	}

	list, err := c.ListDNS(ctx, z.ID)
	if err != nil || len(list) != 6 {
		t.Fatalf("ListDNS %d records, %v", len(list), err)
	}
	for _, r := range list {
		if r.ZoneID != z.ID || r.ID == "" || r.RayID == "" {
			t.Fatalf("listed %+v", r)
		}
	}
	allFromServer(t, f)
}

func TestDeleteDNS(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	z := ensureZone(t, f, "shop.com")
	rec, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "TXT", Name: "_acme-challenge", Content: "token"})
	if err != nil || rec.Name != "_acme-challenge.shop.com" {
		t.Fatalf("%+v %v", rec, err)
	}
	if err := c.DeleteDNS(ctx, z.ID, rec.ID); err != nil {
		t.Fatal(err)
	}
	if len(f.Records(z.ID)) != 0 {
		t.Fatal("the record is still there")
	}
	err = c.DeleteDNS(ctx, z.ID, rec.ID)
	wantCode(t, err, fault.NotFound)
	last := f.Requests()[len(f.Requests())-1]
	if last.Method != http.MethodDelete || last.Path != "/zones/"+z.ID+"/dns_records/"+rec.ID {
		t.Fatalf("sent %s %s", last.Method, last.Path)
	}
	allFromServer(t, f)
}

func TestUnknownZone(t *testing.T) {
	_, c := setup(t, cffake.Config{})
	ctx := context.Background()
	missing := "ffffffffffffffffffffffffffffffff"
	_, err := c.ListDNS(ctx, missing)
	wantCode(t, err, fault.NotFound)
	_, _, err = c.UpsertDNS(ctx, missing, RecordInput{Type: "A", Name: "@", Content: "192.0.2.1"})
	wantCode(t, err, fault.NotFound)
	_, err = c.ConfigureSSL(ctx, missing, SSLSettings{Mode: SSLStrict})
	wantCode(t, err, fault.NotFound)
}

func TestRecordInputRefusedBeforeSending(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	z := ensureZone(t, f, "shop.com")
	tests := []struct {
		name string
		in   RecordInput
	}{
		{"SRV type", RecordInput{Type: "SRV", Name: "_sip._tcp", Content: "10 5 5060 sip.example.com"}},
		{"no type", RecordInput{Name: "www", Content: "192.0.2.1"}},
		{"no name", RecordInput{Type: "A", Content: "192.0.2.1"}},
		{"name with a slash", RecordInput{Type: "A", Name: "../zones", Content: "192.0.2.1"}},
		{"name with a space", RecordInput{Type: "A", Name: "w w", Content: "192.0.2.1"}},
		{"unicode name", RecordInput{Type: "A", Name: "müller", Content: "192.0.2.1"}},
		{"name of 254 characters", RecordInput{Type: "A", Name: strings.Repeat("a.", 127) + "com", Content: "192.0.2.1"}},
		{"A with an IPv6 address", RecordInput{Type: "A", Name: "www", Content: "2001:db8::1"}},
		{"A with a host name", RecordInput{Type: "A", Name: "www", Content: "example.com"}},
		{"A with leading zeros", RecordInput{Type: "A", Name: "www", Content: "192.000.2.1"}},
		{"AAAA with an IPv4 address", RecordInput{Type: "AAAA", Name: "www", Content: "192.0.2.1"}},
		{"AAAA with a zone", RecordInput{Type: "AAAA", Name: "www", Content: "fe80::1%eth0"}},
		{"CNAME to an address", RecordInput{Type: "CNAME", Name: "www", Content: "192.0.2.1:80/x"}},
		{"CNAME to a bare label", RecordInput{Type: "CNAME", Name: "www", Content: "localhost"}},
		{"MX to a URL", RecordInput{Type: "MX", Name: "@", Content: "smtp://mail.example.com"}},
		{"empty TXT", RecordInput{Type: "TXT", Name: "@", Content: ""}},
		{"TXT over 2048", RecordInput{Type: "TXT", Name: "@", Content: strings.Repeat("x", 2049)}},
		{"TXT with an escape", RecordInput{Type: "TXT", Name: "@", Content: "a\x1b[2Jb"}},
		{"ttl 30", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", TTL: 30}},
		{"ttl 59", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", TTL: 59}},
		{"ttl above a day", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", TTL: 86401}},
		{"negative ttl", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", TTL: -1}},
		{"proxied TXT", RecordInput{Type: "TXT", Name: "@", Content: "x", Proxied: ptr(true)}},
		{"proxied MX", RecordInput{Type: "MX", Name: "@", Content: "mx.example.com", Proxied: ptr(true)}},
		{"proxied with a ttl", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", TTL: 300, Proxied: ptr(true)}},
		{"priority on an A record", RecordInput{Type: "A", Name: "www", Content: "192.0.2.1", Priority: ptr(uint16(1))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.UpsertDNS(ctx, z.ID, tt.in)
			wantCode(t, err, fault.InvalidArgument)
			if !strings.Contains(fault.PublicOf(err), "nothing was sent") {
				t.Fatalf("message %q", fault.PublicOf(err))
			}
		})
	}
	for _, id := range []string{"", "shop.com", "../../accounts/x", strings.ToUpper(z.ID)} {
		_, err := c.ListDNS(ctx, id)
		wantCode(t, err, fault.InvalidArgument)
		_, _, err = c.UpsertDNS(ctx, id, RecordInput{Type: "A", Name: "@", Content: "192.0.2.1"})
		wantCode(t, err, fault.InvalidArgument)
		wantCode(t, c.DeleteDNS(ctx, z.ID, id), fault.InvalidArgument)
		wantCode(t, c.DeleteDNS(ctx, id, z.ID), fault.InvalidArgument)
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("fake saw %d requests", n)
	}
}

func TestNameOutsideTheZoneChangesNothing(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	for _, n := range []string{"www.other.com", "shop.com.evil.com", "evilshop.com", "www.shop.co"} {
		_, _, err := c.UpsertDNS(context.Background(), z.ID, RecordInput{Type: "A", Name: n, Content: "192.0.2.1"})
		wantCode(t, err, fault.InvalidArgument)
		if !strings.Contains(fault.PublicOf(err), "not within zone shop.com") {
			t.Fatalf("%s: %q", n, fault.PublicOf(err))
		}
	}
	_, _, err := c.UpsertDNS(context.Background(), z.ID, RecordInput{Type: "CNAME", Name: "www", Content: "www.shop.com"})
	wantCode(t, err, fault.InvalidArgument)
	for _, r := range f.Requests() {
		if r.Method != http.MethodGet || r.Path != "/zones/"+z.ID {
			t.Fatalf("sent %s %s; only the zone may be read", r.Method, r.Path)
		}
	}
}

func TestDNSWritesAreNotRetried(t *testing.T) {
	for _, status := range []int{500, 502, 503} {
		f, c := setup(t, cffake.Config{})
		ctx := context.Background()
		z := ensureZone(t, f, "shop.com")

		f.FailWrites(1, status)
		_, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "www", Content: "192.0.2.1"})
		mayHaveReached(t, err, status, "dns_upsert", "created the record")
		if n := writes(f); n != 1 || len(f.Records(z.ID)) != 0 {
			t.Fatalf("HTTP %d on POST: %d writes sent, want exactly 1", status, n)
		}

		rec, _, err := c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "www", Content: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		f.FailWrites(1, status)
		_, _, err = c.UpsertDNS(ctx, z.ID, RecordInput{Type: "A", Name: "www", Content: "192.0.2.2"})
		mayHaveReached(t, err, status, "dns_upsert", "updated the record")
		if n := writes(f); n != 3 {
			t.Fatalf("HTTP %d on PATCH: %d writes in all, want 3 (POST, POST, PATCH)", status, n)
		}

		f.FailWrites(1, status)
		err = c.DeleteDNS(ctx, z.ID, rec.ID)
		mayHaveReached(t, err, status, "dns_delete", "deleted the record")
		if n := writes(f); n != 4 || len(f.Records(z.ID)) != 1 {
			t.Fatalf("HTTP %d on DELETE: %d writes in all, want 4", status, n)
		}
	}
}

// mayHaveReached checks the error of a write that failed with status: a
// provider error that says the request may have reached Cloudflare.
func mayHaveReached(t *testing.T, err error, status int, op, what string) {
	t.Helper()
	wantCode(t, err, ProviderError)
	msg := fault.PublicOf(err)
	if !provider.Reached(err) || !strings.Contains(msg, "may have reached Cloudflare") || !strings.Contains(msg, what) {
		t.Fatalf("HTTP %d: reached %v, %q", status, provider.Reached(err), msg)
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.Op != op || ce.HTTPStatus != status || ce.RayID == "" ||
		!strings.Contains(strings.Join(ce.ProviderMessages, " "), "injected write failure") {
		t.Fatalf("HTTP %d: cause %+v", status, ce)
	}
}
