package cloudflare

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

func TestConfigureSSL(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")

	got, err := c.ConfigureSSL(context.Background(), z.ID, SSLSettings{Mode: SSLStrict, AlwaysHTTPS: ptr(true), MinTLS: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != SSLStrict || got.AlwaysHTTPS == nil || !*got.AlwaysHTTPS || got.MinTLS != "1.2" {
		t.Fatalf("settings %+v", got)
	}
	if s := f.Settings(z.ID); s.SSL != "strict" || s.AlwaysUseHTTPS != "on" || s.MinTLSVersion != "1.2" {
		t.Fatalf("fake holds %+v", s)
	}
	want := []struct{ path, body string }{
		{"/settings/ssl", `{"value":"strict"}`},
		{"/settings/min_tls_version", `{"value":"1.2"}`},
		{"/settings/always_use_https", `{"value":"on"}`},
	}
	reqs := f.Requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		if reqs[i].Method != http.MethodPatch || reqs[i].Path != "/zones/"+z.ID+w.path || string(reqs[i].Body) != w.body {
			t.Fatalf("request %d: %s %s %s", i, reqs[i].Method, reqs[i].Path, reqs[i].Body)
		}
	}
	allFromServer(t, f)
}

func TestConfigureSSLReadsWhatItLeaves(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	got, err := c.ConfigureSSL(context.Background(), z.ID, SSLSettings{Mode: SSLFull})
	if err != nil || got.Mode != SSLFull || got.AlwaysHTTPS == nil || *got.AlwaysHTTPS || got.MinTLS != "1.0" {
		t.Fatalf("%+v, %v", got, err)
	}
	if writes(f) != 1 || len(f.Requests()) != 3 {
		t.Fatalf("%d writes of %d requests, want 1 of 3", writes(f), len(f.Requests()))
	}
}

func TestSSLInputRefusedBeforeSending(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	z := ensureZone(t, f, "shop.com")
	tests := []struct {
		name   string
		zoneID string
		in     SSLSettings
	}{
		{"nothing to set", z.ID, SSLSettings{}},
		{"full_strict", z.ID, SSLSettings{Mode: "full_strict"}},
		{"mode in capitals", z.ID, SSLSettings{Mode: "Strict"}},
		{"TLS 1.4", z.ID, SSLSettings{MinTLS: "1.4"}},
		{"TLS v1.2", z.ID, SSLSettings{MinTLS: "TLSv1.2"}},
		{"always-HTTPS with SSL off", z.ID, SSLSettings{Mode: SSLOff, AlwaysHTTPS: ptr(true)}},
		{"zone id with a path", "../user/tokens", SSLSettings{Mode: SSLFull}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ConfigureSSL(context.Background(), tt.zoneID, tt.in)
			wantCode(t, err, fault.InvalidArgument)
			if !strings.Contains(fault.PublicOf(err), "nothing was sent") {
				t.Fatalf("message %q", fault.PublicOf(err))
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("fake saw %d requests", n)
	}
}

func TestSSLWriteIsNotRetried(t *testing.T) {
	for _, status := range []int{500, 503} {
		f, c := setup(t, cffake.Config{})
		z := ensureZone(t, f, "shop.com")
		f.FailWrites(1, status)
		_, err := c.ConfigureSSL(context.Background(), z.ID, SSLSettings{Mode: SSLStrict})
		mayHaveReached(t, err, status, "ssl_configure", "changed the SSL mode")
		if n := len(f.Requests()); n != 1 || f.Settings(z.ID).SSL != "full" {
			t.Fatalf("HTTP %d: %d requests, want exactly 1", status, n)
		}
	}
}

// A failure part way says which settings were already changed.
func TestSSLPartialFailureSaysWhatChanged(t *testing.T) {
	f := cffake.New(cffake.Config{Token: serverToken})
	z := ensureZone(t, f, "shop.com")
	var patches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && patches.Add(1) == 2 {
			f.FailWrites(1, 502)
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	base, err := NewClient(Config{BaseURL: srv.URL, Timeout: 5 * time.Second, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := base.As(Credential{AccountID: f.AccountID(), Token: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: serverToken})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ConfigureSSL(context.Background(), z.ID, SSLSettings{Mode: SSLStrict, MinTLS: "1.3", AlwaysHTTPS: ptr(true)})
	wantCode(t, err, ProviderError)
	msg := fault.PublicOf(err)
	if !strings.Contains(msg, "minimum TLS version") || !strings.Contains(msg, "Already changed before this failure: SSL mode set to strict.") || !provider.Reached(err) {
		t.Fatalf("message %q", msg)
	}
	if s := f.Settings(z.ID); s.SSL != "strict" || s.MinTLSVersion != "1.0" || s.AlwaysUseHTTPS != "off" || writes(f) != 2 {
		t.Fatalf("fake holds %+v after %d writes", s, writes(f))
	}
}
