// Package httpx holds the HTTP guards that stand in front of every tollgate
// endpoint: a body size limit, the Host/Origin allow-list against DNS
// rebinding, refusal of tokens in query strings, and JSON error bodies.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Problem is the JSON body of an HTTP-level refusal.
type Problem struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Fail writes a Problem.
func Fail(w http.ResponseWriter, status int, code, description string) {
	WriteJSON(w, status, Problem{Error: code, Description: description})
}

// LimitBody refuses bodies larger than max with 413. A declared
// Content-Length over the limit is refused before reading; otherwise the body
// is read up to max+1 bytes, so a chunked body that turns out longer is
// refused too, and the handler gets the buffered body.
func LimitBody(max int64, next http.Handler) http.Handler {
	return LimitBodyWithin(max, 0, next)
}

// LimitBodyWithin is LimitBody that also gives the client at most within
// to send the body (0: no limit); a slower one gets 408, so that a client
// trickling its body cannot hold the server's goroutines (slowloris).
func LimitBodyWithin(max int64, within time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ReadBody(w, r, max, within) {
			next.ServeHTTP(w, r)
		}
	})
}

// ReadBody buffers r's body as LimitBodyWithin does, for a handler that
// must check something else first (a bearer token, before it spends
// memory on an anonymous body). It reports false after answering the
// request itself (413, 408 or 400); then the caller writes nothing more.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64, within time.Duration) bool {
	tooLarge := func() {
		Fail(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("the request body is larger than the server's limit of %d bytes; send a smaller request (the operator sets the limit with --max-body-bytes)", max))
	}
	if r.ContentLength > max {
		tooLarge()
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	rc := http.NewResponseController(w)
	if within > 0 {
		// Not every ResponseWriter (a test recorder) has a
		// connection to time out: then there is nothing to bound.
		_ = rc.SetReadDeadline(time.Now().Add(within))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	_ = r.Body.Close()
	if within > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		Fail(w, http.StatusRequestTimeout, "request_timeout",
			fmt.Sprintf("the request body did not arrive within %s; send it faster (the operator sets the limit with --body-timeout). Nothing was done", within))
		return false
	}
	if err != nil {
		Fail(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
		return false
	}
	if int64(len(body)) > max {
		tooLarge()
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

// Guard checks Host and Origin against allow-lists (DNS-rebinding
// protection, MCP security best practices) and refuses access tokens in
// query strings (RFC 6750 §2.3 is not supported: URLs end up in logs).
type Guard struct {
	hosts   map[string]bool
	origins map[string]bool
}

// NewGuard builds a Guard. Hosts are compared case-insensitively with their
// port; origins exactly as scheme://host[:port].
func NewGuard(hosts, origins []string) *Guard {
	g := &Guard{hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, h := range hosts {
		g.hosts[strings.ToLower(h)] = true
	}
	for _, o := range origins {
		g.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return g
}

// Wrap applies the guard to next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hosts[strings.ToLower(r.Host)] {
			Fail(w, http.StatusForbidden, "host_not_allowed",
				"Host "+quote(r.Host)+" is not served here (DNS-rebinding protection); use the server's address or add the host with --allowed-hosts")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !g.origins[strings.ToLower(o)] && !sameOrigin(o, r.Host) {
			Fail(w, http.StatusForbidden, "origin_not_allowed",
				"Origin "+quote(o)+" may not call this server; add it with --allowed-origins if it is yours")
			return
		}
		q := r.URL.Query()
		if q.Has("access_token") || q.Has("token") && strings.HasPrefix(r.URL.Path, "/mcp") {
			Fail(w, http.StatusBadRequest, "invalid_request",
				"tokens in the query string are refused (they leak into logs); send Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether origin names the host the request was sent to
// (Origin: http://localhost:7420 with Host: localhost:7420). That Host has
// passed the allow-list, so a page it served is one of ours: a rebound
// attacker's page carries its own name in both (RFC 6454 §4, §7).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
