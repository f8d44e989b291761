package compose

import (
	"context"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools"
)

// gateParts is the wiring of human gates: sealed request state shared by
// replicas through Redis, approvals, remembered consents.
type gateParts struct {
	sealer    *human.Sealer
	approvals *human.Approvals
	consents  *human.Consents
	confirm   money.Money
	capMax    money.Money
}

func (a *App) buildGates(ctx context.Context) (*gateParts, error) {
	rdb := a.Redis.Client
	g := &gateParts{}
	var err error
	if g.sealer, err = human.NewSealer(ctx, rdb, human.SealerConfig{}); err != nil {
		return nil, err
	}
	if g.approvals, err = human.NewApprovals(rdb, human.ApprovalsConfig{MaxPending: a.Cfg.PendingApprovals}); err != nil {
		return nil, err
	}
	if g.consents, err = human.NewConsents(rdb, human.ConsentsConfig{}); err != nil {
		return nil, err
	}
	if g.confirm, err = money.Parse(a.Cfg.ConfirmAbove, "usd"); err != nil {
		return nil, err
	}
	if g.capMax, err = money.Parse(a.Cfg.CapMax, "usd"); err != nil {
		return nil, err
	}
	return g, nil
}

func (a *App) gateConfig() tools.GateConfig {
	return tools.GateConfig{
		Sealer: a.gates.sealer, Approvals: a.gates.approvals, Consents: a.gates.consents,
		ApprovalURL:     func(id string) string { return a.Cfg.PublicURL + "/approvals/" + id },
		FormsByApproval: a.Cfg.FormGates == "approval",
	}
}

// Approvals is the approvals store (for the page, the CLI and tests).
func (a *App) Approvals() *human.Approvals { return a.gates.approvals }

// Trail is the audit trail.
func (a *App) Trail() *sessions.Audit { return a.id.trail }
