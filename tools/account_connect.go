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

// Link fields of a Cloudflare account (internal/links).
const (
	LinkCloudflareAccount = "cloudflare_account"
	// SecretCloudflareOAuth names the sealed OAuth access token.
	SecretCloudflareOAuth = "cloudflare_oauth"
)

// AccountNotLinked: the authentication gate was passed but no account came
// back from Cloudflare's consent page.
const AccountNotLinked fault.Code = "account_not_linked"

// AccountCreator creates Cloudflare accounts with the server's credential.
type AccountCreator interface {
	CreateAccount(ctx context.Context, name string) (cloudflare.Account, error)
}

// LinkStore reads and records what connects a principal to a provider.
type LinkStore interface {
	Get(ctx context.Context, principal, field string) (string, error)
	Set(ctx context.Context, principal string, fields map[string]string) error
}

// AccountConfig configures account_connect.
type AccountConfig struct {
	Links    LinkStore
	Creator  AccountCreator
	Consents ConsentStore
	// TermsURL and TermsVersion are Cloudflare's terms the human accepts
	// before an account is created for them.
	TermsURL     string
	TermsVersion string
}

// AuthenticationMessage is what the authentication gate shows the human.
const AuthenticationMessage = "Link your Cloudflare account: sign in at Cloudflare and allow tollgate access. Open the link, sign in as yourself, and choose Continue to Cloudflare. The credential stays on the server; the agent never sees it."

type accountArgs struct {
	gated
	Create bool `json:"create,omitempty" jsonschema:"true when the human has no Cloudflare account: one is created after they accept Cloudflare's terms"`
}

type accountResult struct {
	Status    string `json:"status" jsonschema:"linked (already or now) or created"`
	AccountID string `json:"account_id"`
}

// AccountConnect links the principal's Cloudflare account by OAuth consent
// (an authentication URL gate whose flow lives in internal/app), or creates
// one after the terms gate. The OAuth credential is never returned.
func AccountConnect(cfg AccountConfig) Tool {
	linked := func(ctx context.Context) (string, string, error) {
		id, ok := IdentityFrom(ctx)
		if !ok {
			return "", "", fault.New(fault.Unauthenticated, "no verified caller")
		}
		acct, err := cfg.Links.Get(ctx, id.Claims.Subject, LinkCloudflareAccount)
		return id.Claims.Subject, acct, err
	}
	return Tool{
		Def: mcp.NewTool("account_connect",
			mcp.WithDescription("Link the human's Cloudflare account to tollgate. If none is linked, the human signs in at Cloudflare and allows access (authentication gate, URL mode); the credential stays server-side. With create=true (the human has no account) one is created after they accept Cloudflare's terms (terms gate). Returns the account id."),
			mcp.WithInputSchema[accountArgs](),
			mcp.WithOutputSchema[accountResult](),
			annotate(false, false, true, true),
		),
		Scopes:   []string{"account:link"},
		Gates:    []string{string(human.Authentication), string(human.Terms)},
		Provider: "cloudflare",
		Ask: func(ctx context.Context, req mcp.CallToolRequest, _ *Quote) ([]Ask, error) {
			var a accountArgs
			if err := bind(req, &a); err != nil {
				return nil, err
			}
			principal, acct, err := linked(ctx)
			if err != nil || acct != "" {
				return nil, err
			}
			if !a.Create {
				return []Ask{{Kind: human.Authentication, Message: AuthenticationMessage,
					Fields: map[string]string{"provider": "cloudflare", "what": "link your Cloudflare account (OAuth consent)"}}}, nil
			}
			// SPEC §8: terms, once accepted with this version, are not asked again.
			ok, err := cfg.Consents.Has(ctx, principal, "cloudflare", human.Terms, cfg.TermsVersion)
			if err != nil || ok {
				return nil, err
			}
			msg := fmt.Sprintf("Accept Cloudflare's terms of service (version %s) so that a Cloudflare account is created for you: %s", cfg.TermsVersion, cfg.TermsURL)
			return []Ask{{Kind: human.Terms, Message: msg,
				Fields:   map[string]string{"provider": "cloudflare", "terms_url": cfg.TermsURL, "version": cfg.TermsVersion},
				Remember: &Consent{Provider: "cloudflare", Version: cfg.TermsVersion}}}, nil
		},
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a accountArgs
			if err := bind(req, &a); err != nil {
				return Refuse(err, false), nil
			}
			principal, acct, err := linked(ctx)
			if err != nil {
				return Refuse(err, false), nil
			}
			if acct != "" {
				return result(accountResult{Status: "linked", AccountID: acct}), nil
			}
			if !a.Create {
				return Refuse(fault.New(AccountNotLinked, "no Cloudflare account came back from Cloudflare's consent page yet: the human has to finish there (Continue to Cloudflare on the approval page). Call account_connect again to ask again. Nothing was changed."), false), nil
			}
			// The gate passed only with the terms accepted; check again, in
			// case it was an approval of something else.
			ok, err := cfg.Consents.Has(ctx, principal, "cloudflare", human.Terms, cfg.TermsVersion)
			if err != nil {
				return Refuse(err, false), nil
			}
			if !ok {
				return Refuse(fault.New(GateDeclined, "Cloudflare's terms were not accepted; no account was created."), false), nil
			}
			name := strings.TrimPrefix(principal, "user:")
			if len(name) > 90 {
				name = strings.ToValidUTF8(name[:90], "")
			}
			created, err := cfg.Creator.CreateAccount(ctx, name+" (tollgate)")
			if err != nil {
				return Refuse(err, true), nil
			}
			if err := cfg.Links.Set(ctx, principal, map[string]string{LinkCloudflareAccount: created.ID}); err != nil {
				return Refuse(fault.Wrap(err, fault.Unavailable, "the Cloudflare account "+created.ID+" was created but could not be recorded; link it with account_connect (create=false)"), true), nil
			}
			return result(accountResult{Status: "created", AccountID: created.ID}), nil
		},
	}
}
