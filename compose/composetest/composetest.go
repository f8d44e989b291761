// Package composetest serves a sandbox tollgate for tests, as
// net/http/httptest serves a handler: a compose.App built from the sandbox
// configuration on a given Redis, behind a loopback listener whose address
// is the configured public URL. Only tests import it.
package composetest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/tollgate-dev/tollgate/compose"
	"github.com/tollgate-dev/tollgate/internal/config"
)

// Serve builds the sandbox App on redisURL, with change applied to its
// configuration first (nil: none), and serves it until the test ends.
func Serve(t testing.TB, redisURL string, change func(*config.Config)) (*compose.App, *httptest.Server) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg := config.Default()
	cfg.Addr = ts.Listener.Addr().String()
	cfg.RedisURL = redisURL
	if change != nil {
		change(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := compose.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ts.Config.Handler = a.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return a, ts
}
