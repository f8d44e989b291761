//go:build !nosandbox

package compose

import "github.com/tollgate-dev/tollgate/gates/spend"

// Ledger is the App's spend ledger, for tests that make holds directly.
func (a *App) Ledger() *spend.Ledger { return a.money.ledger }
