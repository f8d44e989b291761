package agent

import "golang.org/x/oauth2"

// Spoil replaces the cached token with one the server refuses, as if its
// signing keys had changed under it.
func Spoil(ts *TokenSource) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := *ts.cur.tok
	t.AccessToken = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c3BvaWxlZA"
	ts.cur.tok = (&t).WithExtra(map[string]any{})
}

var _ oauth2.TokenSource = (*TokenSource)(nil)
