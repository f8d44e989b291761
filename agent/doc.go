// Package agent is tollgate's Go SDK for agents: it turns an agent's
// workload attestation and the token of the human it works for into
// short-lived task tokens (RFC 8693 token exchange at tollgate's
// /oauth/token), keeps them fresh, narrows them for sub-agents, and puts
// them on the agent's MCP requests.
//
//	ts, err := agent.New(agent.Config{
//		Issuer:    "http://127.0.0.1:7420",
//		Actor:     agent.JWTFile("/var/run/secrets/tokens/agent"),
//		Subject:   humanTokenSource, // an oauth2.TokenSource of the human's token
//		Scope:     []string{"domain:read", "domain:register"},
//		Resources: []string{"shop.example"},
//		Budgets:   []agent.Budget{{Provider: "cloudflare", Amount: "20.00", Currency: "usd"}},
//	})
//	tr, _ := transport.NewStreamableHTTP(issuer+"/mcp", transport.WithHTTPBasicClient(ts.HTTPClient()))
//	c := client.NewClient(tr)
//
// What it owns: the exchange request and its form encoding, caching one
// task token per TokenSource, refreshing it in its session before expiry (with jitter, one
// exchange however many goroutines ask), Delegate for sub-agents, the
// bearer transport that retries a 401 once with a fresh token, and OAuth
// errors as *Error values that say what to do.
//
// What it never does: decide what a token may do (tollgate's STS narrows
// and refuses; this package only asks and reports the answer), widen a
// grant on its own, retry a refused exchange, log or print a token, or
// replay a request whose body it cannot replay.
//
// Attestation sources: a workload JWT in a file (JWTFile: Kubernetes
// projected service-account tokens, a SPIFFE JWT-SVID written by
// spiffe-helper, a CI OIDC token), any function (AttestorFunc: e.g. the
// SPIFFE Workload API over its unix socket with go-spiffe's
// workloadapi.FetchJWTSVID), or the sandbox's dev attestor (DevAttestor).
// tollgate's unix attestor attests the peer of a connection tollgate itself
// accepts (the parent of `tollgate stdio`), so an agent that wants it
// launches `tollgate stdio` as its MCP server and needs no exchange.
//
// The first exchange opens the task session, with the budget the Config
// asks for. Later, while the current token is valid, the TokenSource
// refreshes it: it exchanges its own task token with its attestation, and
// tollgate issues a fresh token of the same session, scope, resources and
// budget (a refresh never widens or resets them; MaxTaskLife at the server,
// 12h, ends it). Only a TokenSource whose token has already expired
// (unused for longer than the token's life) exchanges anew, which opens a
// new task session. A revoked session ends the TokenSource.
package agent
