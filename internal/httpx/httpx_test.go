package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuardOrigin(t *testing.T) {
	g := NewGuard([]string{"localhost:7420", "127.0.0.1:7420"}, []string{"http://127.0.0.1:7420"})
	ok := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tests := []struct {
		name, host, origin string
		want               int
	}{
		{"no Origin (a non-browser client)", "localhost:7420", "", 204},
		{"listed origin", "127.0.0.1:7420", "http://127.0.0.1:7420", 204},
		{"same origin as an allowed Host", "localhost:7420", "http://localhost:7420", 204},
		{"same origin, case differs", "localhost:7420", "http://LOCALHOST:7420", 204},
		{"another port on an allowed host", "localhost:7420", "http://localhost:8080", 403},
		{"an allowed host naming another allowed host", "localhost:7420", "http://127.0.0.1:8080", 403},
		{"rebound attacker page: its own name as Host", "evil.example:7420", "http://evil.example:7420", 403},
		{"foreign origin to an allowed Host", "localhost:7420", "http://evil.example", 403},
		{"opaque origin", "localhost:7420", "null", 403},
		{"origin with a path is not an origin", "localhost:7420", "http://localhost:7420/x", 403},
		{"origin with credentials", "localhost:7420", "http://u@localhost:7420", 403},
		{"non-web scheme", "localhost:7420", "file://localhost:7420", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "http://"+tc.host+"/mcp", nil)
			req.Host = tc.host
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			rec := httptest.NewRecorder()
			ok.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body.String())
			}
		})
	}
}
