//go:build nosandbox

package compose

// A production build (go build -tags nosandbox ./cmd/tollgate): no fake
// providers, no embedded Redis, no dev identity or its OpenID provider. See
// sandbox.go.

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/internal/signin"
)

// SandboxBuilt reports whether this binary has the sandbox.
const SandboxBuilt = false

// ErrNoSandbox is what every sandbox entry point of this build answers.
var ErrNoSandbox = errors.New("this tollgate binary was built without the sandbox (-tags nosandbox): run it with --production, or build the default binary (go build ./cmd/tollgate, or make run) for the sandbox")

type sandboxParts struct{}

func startSandbox(config.Config) (*sandboxParts, error) { return nil, ErrNoSandbox }

func (*sandboxParts) cloudflareURL() string          { return "" }
func (*sandboxParts) stripeURL() string              { return "" }
func (*sandboxParts) stripeClock() string            { return "" }
func (*sandboxParts) webhookSecret() string          { return "" }
func (*sandboxParts) oauthEndpoint() oauth2.Endpoint { return oauth2.Endpoint{} }
func (*sandboxParts) close()                         {}

func newDevSigner(string, *auth.KeyRing, *auth.KeyRing) (devIdentity, error) {
	return nil, ErrNoSandbox
}

func newDevIDP(string, *auth.KeyRing) (http.Handler, error) { return nil, ErrNoSandbox }

func devSignIn(config.Config) (signin.Config, bool) { return signin.Config{}, false }

func (a *App) sandboxRoutes(*http.ServeMux) {}

func (a *App) linkSandboxAccount(context.Context, string) (string, bool, int, error) {
	return "", false, 0, ErrNoSandbox
}
