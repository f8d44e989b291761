package compose

import "github.com/tollgate-dev/tollgate/web/edge"

const AnonymousBodyLimit, UnknownTool = anonymousBodyLimit, edge.UnknownTool

// SandboxClock is the sandbox's Stripe test clock.
func (a *App) SandboxClock() string { return a.sandbox.stripeClock() }
