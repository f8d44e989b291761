package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// DeployConfig configures the deploy tools.
type DeployConfig struct {
	// WorkersSubdomain is the account's workers.dev subdomain, for preview
	// URLs; empty leaves the URL out.
	WorkersSubdomain string
}

type deployPreviewArgs struct {
	Name   string `json:"name" jsonschema:"the Worker's production name: the domain it serves with each - written -- and each . written - (shop.example: shop-example; my-shop.example: my--shop-example)"`
	Script string `json:"script" jsonschema:"the Worker's ES module source"`
}

type deployPreviewResult struct {
	Name        string `json:"name"`
	Domain      string `json:"domain" jsonschema:"the domain the Worker serves (its name decoded)"`
	Account     string `json:"account_id" jsonschema:"the human's Cloudflare account the Worker lives in"`
	PreviewID   string `json:"preview_id" jsonschema:"pass it to deploy_promote"`
	PreviewName string `json:"preview_name"`
	URL         string `json:"url,omitempty"`
	SHA256      string `json:"sha256"`
	Size        int    `json:"size"`
}

// previewID names a preview by its content (128 bits of its SHA-256: no
// two scripts can be made to share one), so uploading the same script
// again is the same preview, and what a human approves by id is exactly
// what goes live.
func previewID(script []byte) string {
	sum := sha256.Sum256(script)
	return hex.EncodeToString(sum[:16])
}

// DeployPreview uploads a Worker under a preview name; production is not
// touched.
func DeployPreview(cfg DeployConfig) Tool {
	return Tool{
		def: mcp.NewTool("deploy_preview",
			mcp.WithDescription("Upload a Worker script under a preview name (production is not touched) in the human's linked Cloudflare account, and return the preview id and URL. The Worker is named after the domain it serves (shop.example: shop-example; each - doubled, each . a -); that domain must be a zone of the account and named by this task's token. Uploading the same script again gives the same preview. Promote it with deploy_promote, which asks a human first."),
			mcp.WithInputSchema[deployPreviewArgs](),
			mcp.WithOutputSchema[deployPreviewResult](),
			annotate(false, false, true, true),
		),
		Scopes:       []string{"deploy:preview"},
		Provider:     "cloudflare",
		Metered:      true,
		Target:       "name",
		WorkerTarget: true,
		Account:      true,
		Owned:        true,
		run: handler[deployPreviewArgs, deployPreviewResult]{do: func(ctx context.Context, c Call[deployPreviewArgs]) (deployPreviewResult, error) {
			a := c.Args
			w, zone, err := c.Tenant.zone()
			if err != nil {
				return deployPreviewResult{}, err
			}
			body := []byte(a.Script)
			id := previewID(body)
			name := cloudflare.PreviewName(a.Name, id)
			if name == "" {
				return deployPreviewResult{}, fault.Newf(fault.InvalidArgument, "no preview name can be made from %q; nothing was uploaded", a.Name)
			}
			c.Progress(ctx, 0, 1, "uploading "+name)
			s, err := w.UploadScript(ctx, name, body)
			if err != nil {
				return deployPreviewResult{}, err
			}
			c.Progress(ctx, 1, 1, "uploaded "+name)
			out := deployPreviewResult{Name: a.Name, Domain: string(zone.Name), Account: w.Account(), PreviewID: id, PreviewName: name, SHA256: s.SHA256, Size: s.Size}
			if cfg.WorkersSubdomain != "" {
				out.URL = "https://" + name + "." + cfg.WorkersSubdomain + ".workers.dev"
			}
			return out, nil
		}},
	}
}
