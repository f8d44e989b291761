package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// Workers is the Cloudflare Workers API as the deploy tools use it.
type Workers interface {
	UploadScript(ctx context.Context, name string, body []byte) (cloudflare.Script, error)
	GetScript(ctx context.Context, name string) ([]byte, cloudflare.Script, error)
}

// DeployConfig configures the deploy tools.
type DeployConfig struct {
	// WorkersSubdomain is the account's workers.dev subdomain, for preview
	// URLs; empty leaves the URL out.
	WorkersSubdomain string
}

type deployPreviewArgs struct {
	Name   string `json:"name" jsonschema:"the Worker's production name, e.g. shop (lowercase letters, digits, hyphens)"`
	Script string `json:"script" jsonschema:"the Worker's ES module source"`
}

type deployPreviewResult struct {
	Name        string `json:"name"`
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
func DeployPreview(w Workers, cfg DeployConfig) Tool {
	return Tool{
		Def: mcp.NewTool("deploy_preview",
			mcp.WithDescription("Upload a Worker script under a preview name (production is not touched) and return the preview id and URL. Uploading the same script again gives the same preview. Promote it with deploy_promote, which asks a human first."),
			mcp.WithInputSchema[deployPreviewArgs](),
			mcp.WithOutputSchema[deployPreviewResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"deploy:preview"},
		Provider: "cloudflare",
		Metered:  true,
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a deployPreviewArgs
			if err := bind(req, &a); err != nil {
				return Refuse(err, false), nil
			}
			if err := cloudflare.ValidateScriptName(a.Name); err != nil {
				return Refuse(err, false), nil
			}
			if err := workerAllowed(ctx, a.Name); err != nil {
				return Refuse(err, false), nil
			}
			body := []byte(a.Script)
			id := previewID(body)
			name := cloudflare.PreviewName(a.Name, id)
			if name == "" {
				return Refuse(fault.Newf(fault.InvalidArgument, "no preview name can be made from %q; nothing was uploaded", a.Name), false), nil
			}
			progress(ctx, req, 0, 1, "uploading "+name)
			s, err := w.UploadScript(ctx, name, body)
			if err != nil {
				return Refuse(err, cloudflare.MayHaveReached(err)), nil
			}
			progress(ctx, req, 1, 1, "uploaded "+name)
			out := deployPreviewResult{Name: a.Name, PreviewID: id, PreviewName: name, SHA256: s.SHA256, Size: s.Size}
			if cfg.WorkersSubdomain != "" {
				out.URL = "https://" + name + "." + cfg.WorkersSubdomain + ".workers.dev"
			}
			return result(out), nil
		},
	}
}

// workerAllowed applies tollgate:resources to deployments (SPEC §4.2): when
// the token names domains, it may only deploy their Workers, named by a
// domain's first label (shop for shop.example) or by the whole name with
// dots as hyphens (shop-example). A token that names no domains is not
// limited here, like the other free tools.
func workerAllowed(ctx context.Context, name string) error {
	id, ok := IdentityFrom(ctx)
	if !ok {
		return fault.New(fault.Unauthenticated, "no verified caller")
	}
	domains, limited := id.Claims.AuthorizationDetails.Domains()
	if !limited {
		return nil
	}
	for _, d := range domains {
		first, _, _ := strings.Cut(d, ".")
		if name == first || name == strings.ReplaceAll(d, ".", "-") {
			return nil
		}
	}
	return fault.Newf(fault.ResourceForbidden,
		"Worker %q belongs to none of this task's domains (%s); name it after one of them. Nothing was uploaded or changed.", name, strings.Join(domains, " "))
}
