package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
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
		run: handler[whoamiArgs, whoamiResult]{do: func(ctx context.Context, c Call[whoamiArgs]) (whoamiResult, error) {
			cl := c.Caller
			chain := cl.Act.Chain()
			if chain == nil {
				chain = []string{}
			}
			exp := cl.Expiry.Time()
			return whoamiResult{
				Principal: cl.Subject, ClientID: cl.ClientID, Actors: chain, Scopes: nonNil(cl.Scopes()),
				AuthorizationDetails: cl.AuthorizationDetails, SessionID: cl.SessionID, ParentSessionID: cl.ParentSessionID,
				Expires: exp.UTC(), ExpiresIn: int64(exp.Sub(clock()).Seconds()),
			}, nil
		}},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
