package provider

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// send posts through a NewClient client under Record and returns what the
// transport saw, the body the caller read and the error.
func send(t *testing.T, c *http.Client, url string) (Seen, string, error) {
	t.Helper()
	ctx, ex := Record(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"buy":"shop.example"}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		return ex.Seen(), "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ex.Seen(), string(b), nil
}

func TestClientRecordsTheExchange(t *testing.T) {
	big := strings.Repeat("x", MaxErrorBody+100)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantBody   string // what the caller reads
		wantKept   string // Seen.Body
		wantRetry  string
		wantReqID  string
		wantStatus int
	}{
		{name: "a 2xx answer is passed on unread", status: 200, header: map[string]string{"Cf-Ray": "ray-1"},
			body: `{"ok":true}`, wantBody: `{"ok":true}`, wantReqID: "ray-1", wantStatus: 200},
		{name: "a 5xx body is kept and still readable", status: 502, header: map[string]string{"Cf-Ray": "ray-2"},
			body: `{"errors":[{"code":1}]}`, wantBody: `{"errors":[{"code":1}]}`, wantKept: `{"errors":[{"code":1}]}`, wantReqID: "ray-2", wantStatus: 502},
		{name: "a 429 keeps Retry-After", status: 429, header: map[string]string{"Retry-After": "30"},
			body: "slow down", wantBody: "slow down", wantKept: "slow down", wantRetry: "30", wantStatus: 429},
		{name: "an error body over the bound is cut", status: 500, body: big,
			wantBody: big[:MaxErrorBody], wantKept: big[:MaxErrorBody], wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c := NewClient(Config{RequestIDHeader: "cf-ray"})
			s, body, err := send(t, c, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Wrote || !s.Reached() || s.Status != tt.wantStatus || s.RequestID != tt.wantReqID || s.RetryAfter != tt.wantRetry {
				t.Fatalf("seen %+v", s)
			}
			if body != tt.wantBody || string(s.Body) != tt.wantKept {
				t.Fatalf("caller read %d bytes, kept %d bytes", len(body), len(s.Body))
			}
		})
	}
}

func TestRedirectIsTheAnswer(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	s, _, err := send(t, NewClient(Config{}), srv.URL)
	if err != nil || s.Status != http.StatusTemporaryRedirect || elsewhere.Load() != 0 {
		t.Fatalf("status %d, err %v, %d requests re-sent elsewhere", s.Status, err, elsewhere.Load())
	}
}

func TestNothingSentIsNotReached(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close() // nothing listens: the connection is refused
	s, _, err := send(t, NewClient(Config{}), url)
	if err == nil || s.Wrote || s.Status != 0 || s.Reached() {
		t.Fatalf("refused connection: err %v, seen %+v", err, s)
	}
}

func TestSentWithoutAnswerMayHaveReached(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // the request arrived; no answer comes
		}
	}))
	t.Cleanup(srv.Close)
	s, _, err := send(t, NewClient(Config{}), srv.URL)
	if err == nil || !s.Wrote || s.Status != 0 || !s.Reached() {
		t.Fatalf("hung-up connection: err %v, seen %+v", err, s)
	}
}

type headerTransport struct{ base http.RoundTripper }

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer acting-account")
	return h.base.RoundTrip(req)
}

func TestClientIsACopyWithTheInnerTransport(t *testing.T) {
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	given := &http.Client{Timeout: 5 * time.Second}
	c := NewClient(Config{HTTPClient: given, Inner: func(b http.RoundTripper) http.RoundTripper { return headerTransport{b} }})
	if given.Transport != nil || given.CheckRedirect != nil || c.Timeout != given.Timeout {
		t.Fatal("the given client was modified, or its timeout not copied")
	}
	if _, _, err := send(t, c, srv.URL); err != nil || auth.Load() != "Bearer acting-account" {
		t.Fatalf("err %v, Authorization %v", err, auth.Load())
	}
	// A request sent without Record is sent, and recorded nowhere.
	res, err := c.Post(srv.URL, "text/plain", bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
}
