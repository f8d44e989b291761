package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

type whoamiArgs struct{}

type whoamiResult struct {
	Principal            string                    `json:"principal"`
	ClientID             string                    `json:"client_id"`
	Actors               []string                  `json:"actors" jsonschema:"the delegation chain, the current agent first"`
	Scopes               []string                  `json:"scopes"`
	AuthorizationDetails auth.AuthorizationDetails `json:"authorization_details,omitempty"`
	SessionID            string                    `json:"session_id"`
	ParentSessionID      string                    `json:"parent_session_id,omitempty"`
	Expires              time.Time                 `json:"expires"`
	ExpiresIn            int64                     `json:"expires_in_seconds"`
}

// Whoami reports who the current token speaks for and what it allows.
func Whoami(clock func() time.Time) Tool {
	return Tool{
		def: mcp.NewTool("whoami",
			mcp.WithDescription("Who is calling: the principal (the human whose task this is), the delegation chain of agents, the scopes, budgets and resources of the current task token, its session id and expiry. Calls no provider."),
			mcp.WithInputSchema[whoamiArgs](),
			mcp.WithOutputSchema[whoamiResult](),
			annotate(true, false, true, false),
		),
		Scopes: nil, // any valid token
		handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a whoamiArgs
			if err := bind(req, &a); err != nil {
				return Refuse(err), nil
			}
			id, ok := IdentityFrom(ctx)
			if !ok {
				return Refuse(fault.New(fault.Unauthenticated, "no verified token")), nil
			}
			c := id.Claims
			chain := c.Act.Chain()
			if chain == nil {
				chain = []string{}
			}
			exp := c.Expiry.Time()
			return result(whoamiResult{
				Principal: c.Subject, ClientID: c.ClientID, Actors: chain, Scopes: nonNil(c.Scopes()),
				AuthorizationDetails: c.AuthorizationDetails, SessionID: c.SessionID, ParentSessionID: c.ParentSessionID,
				Expires: exp.UTC(), ExpiresIn: int64(exp.Sub(clock()).Seconds()),
			}), nil
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
