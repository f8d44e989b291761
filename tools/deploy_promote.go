package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

type deployPromoteArgs struct {
	gated
	Name      string `json:"name" jsonschema:"the Worker's production name (the domain it serves, each - doubled, each . a -)"`
	PreviewID string `json:"preview_id" jsonschema:"the preview_id deploy_preview returned"`
}

type deployPromoteResult struct {
	Name           string `json:"name"`
	Domain         string `json:"domain"`
	Account        string `json:"account_id"`
	PreviewID      string `json:"preview_id"`
	SHA256         string `json:"sha256"`
	Size           int    `json:"size"`
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
}

// promotion is what a promote would change, read before the gate.
type promotion struct {
	name, preview    string
	id               string
	domain, account  string
	newBody, oldBody []byte
	newS, oldS       cloudflare.Script
	hadOld           bool
}

// readPromotion reads what promoting would change, for the gate and again
// for the handler (the preview may have changed in between).
func readPromotion(ctx context.Context, c Call[deployPromoteArgs]) (*cloudflare.Client, *promotion, error) {
	a := c.Args
	w, zone, err := c.Tenant.zone()
	if err != nil {
		return nil, nil, err
	}
	if a.PreviewID == "" {
		return nil, nil, fault.New(fault.InvalidArgument, "preview_id is required: the id deploy_preview returned; nothing was changed")
	}
	p := &promotion{name: a.Name, id: a.PreviewID, preview: cloudflare.PreviewName(a.Name, a.PreviewID), domain: string(zone.Name), account: w.Account()}
	if p.preview == "" {
		return nil, nil, fault.Newf(fault.InvalidArgument, "preview_id %q is not one deploy_preview returns; nothing was changed", a.PreviewID)
	}
	if p.newBody, p.newS, err = w.GetScript(ctx, p.preview); err != nil {
		if fault.CodeOf(err) == fault.NotFound {
			return nil, nil, fault.Newf(fault.NotFound, "there is no preview %s of %s; upload it with deploy_preview first. Nothing was changed", a.PreviewID, a.Name)
		}
		return nil, nil, err
	}
	// The preview id is its content's hash: what the human approves is
	// exactly what goes live.
	if previewID(p.newBody) != a.PreviewID {
		return nil, nil, fault.Newf(fault.InvalidArgument, "preview %s no longer holds the script it was made from; upload it again with deploy_preview. Nothing was changed", a.PreviewID)
	}
	p.oldBody, p.oldS, err = w.GetScript(ctx, a.Name)
	switch {
	case err == nil:
		p.hadOld = true
	case fault.CodeOf(err) != fault.NotFound:
		return nil, nil, err
	}
	return w, p, nil
}

// DeployPromote makes a preview the production script, after a human has
// seen exactly what changes (the production gate).
func DeployPromote() Tool {
	return Tool{
		def: mcp.NewTool("deploy_promote",
			mcp.WithDescription("Promote a preview (from deploy_preview) to the production Worker. A human is asked first and shown what changes: the script's name, size and hash, old and new, and the first changed lines. Declined: nothing changes."),
			mcp.WithInputSchema[deployPromoteArgs](),
			mcp.WithOutputSchema[deployPromoteResult](),
			annotate(false, true, true, true),
		),
		Scopes:       []string{"deploy:production"},
		Gates:        []string{string(human.Production)},
		Provider:     "cloudflare",
		Metered:      true,
		Target:       "name",
		WorkerTarget: true,
		Account:      true,
		Owned:        true,
		// Not replayed from an idempotency record: promoting is naturally
		// idempotent (the same content), and promoting an older preview
		// again must roll back, not return the first promotion's result.
		run: handler[deployPromoteArgs, deployPromoteResult]{ask_: func(ctx context.Context, c Call[deployPromoteArgs], _ *Quote) ([]Ask, error) {
			_, p, err := readPromotion(ctx, c)
			if err != nil {
				return nil, err
			}
			return []Ask{productionAsk(p)}, nil
		}, do: func(ctx context.Context, c Call[deployPromoteArgs]) (deployPromoteResult, error) {
			w, p, err := readPromotion(ctx, c)
			if err != nil {
				return deployPromoteResult{}, err
			}
			c.Progress(ctx, 0, 1, "promoting "+p.preview+" to "+p.name)
			s, err := w.UploadScript(ctx, p.name, p.newBody)
			if err != nil {
				return deployPromoteResult{}, err
			}
			c.Progress(ctx, 1, 1, p.name+" is live")
			out := deployPromoteResult{Name: p.name, Domain: p.domain, Account: p.account, PreviewID: p.id, SHA256: s.SHA256, Size: s.Size}
			if p.hadOld {
				out.PreviousSHA256 = p.oldS.SHA256
			}
			return out, nil
		}},
	}
}

// productionAsk shows what the promotion changes.
func productionAsk(p *promotion) Ask {
	summary, lines := cloudflare.Diff(p.oldBody, p.newBody, 12)
	old := "none (a new Worker)"
	if p.hadOld {
		old = fmt.Sprintf("%d bytes, sha256 %s", p.oldS.Size, p.oldS.SHA256)
	}
	newer := fmt.Sprintf("%d bytes, sha256 %s", p.newS.Size, p.newS.SHA256)
	msg := fmt.Sprintf("Promote to production: Worker %q, serving %s, in Cloudflare account %s.\nNow: %s\nNew: %s (preview %s)\n%s",
		p.name, p.domain, p.account, old, newer, p.preview, summary)
	if len(lines) > 0 {
		msg += "\nFirst changed lines:\n" + strings.Join(lines, "\n")
	}
	return Ask{Kind: human.Production, Message: msg, Fields: map[string]string{
		"script": p.name, "domain": p.domain, "account": p.account, "preview": p.preview, "old": old, "new": newer, "change": summary,
	}}
}
