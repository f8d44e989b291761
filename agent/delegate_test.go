package agent_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/agent"
)

// TestDelegateOnlyNarrows: a sub-agent's TokenSource gets the narrower
// scope, domains and budget it asks for, with the parent's session as its
// parent and both agents in the chain; asking for anything the parent
// lacks fails at Delegate with the server's reason.
func TestDelegateOnlyNarrows(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	parent := planner(t, base, c, agent.Config{
		Scope:     []string{"catalog:read", "dns:read", "dns:write", "deploy:preview"},
		Resources: []string{"shop.example", "blog.example"},
		Budgets:   []agent.Budget{{Provider: "cloudflare", Amount: "20.00", Currency: "usd"}},
	})
	ptok, err := parent.Token()
	if err != nil {
		t.Fatal(err)
	}
	deployer := agent.DevAttestor(base, "deployer", nil)
	ctx := context.Background()

	type row struct {
		name string
		d    agent.Delegation
		code agent.Code // "" when issued
		// what the issued token holds
		scope, domains, cloudflare string
		says                       string // a word of the server's reason
	}
	rows := []row{
		{name: "narrower scope, one domain, smaller budget",
			d:     agent.Delegation{Scope: []string{"deploy:preview"}, Resources: []string{"shop.example"}, Budgets: []agent.Budget{{Provider: "cloudflare", Amount: "5.00", Currency: "usd"}}},
			scope: "deploy:preview", domains: "shop.example", cloudflare: "5.00"},
		{name: "asks nothing and inherits the parent's grants, no more",
			d:     agent.Delegation{},
			scope: "catalog:read dns:read dns:write deploy:preview", domains: "shop.example,blog.example", cloudflare: "20.00"},
		{name: "a scope the parent lacks", d: agent.Delegation{Scope: []string{"deploy:preview", "domain:register"}}, code: agent.InvalidScope, says: "domain:register"},
		{name: "a domain outside the parent's", d: agent.Delegation{Resources: []string{"shop.example", "evil.example"}}, code: agent.InvalidRequest, says: "evil.example"},
		{name: "a budget one cent above the parent's", d: agent.Delegation{Budgets: []agent.Budget{{Provider: "cloudflare", Amount: "20.01", Currency: "usd"}}}, code: agent.InvalidRequest, says: "only narrow"},
		{name: "a budget where the parent has none", d: agent.Delegation{Budgets: []agent.Budget{{Provider: "stripe", Amount: "1.00", Currency: "usd"}}}, code: agent.InvalidRequest, says: "no stripe budget"},
		{name: "a malformed budget never reaches the server", d: agent.Delegation{Budgets: []agent.Budget{{Provider: "cloudflare", Amount: "1.5e3", Currency: "usd"}}}, code: agent.Misconfigured, says: "Budgets"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.Actor = deployer
			before := c.exchanges()
			child, err := parent.Delegate(ctx, tc.d)
			if tc.code != "" {
				var e *agent.Error
				if !errors.As(err, &e) || !errors.Is(err, tc.code) || e.Op != "delegate" || child != nil {
					t.Fatalf("got %v, want %s from delegate", err, tc.code)
				}
				if !strings.Contains(e.Description, tc.says) || !strings.Contains(err.Error(), e.Remedy()) {
					t.Fatalf("the error does not say why and what to do: %v", err)
				}
				if tc.code == agent.Misconfigured && c.exchanges() != before {
					t.Fatalf("a malformed delegation was sent")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok, err := child.Token()
			if err != nil {
				t.Fatal(err)
			}
			cl, pcl := decode(t, tok.AccessToken), decode(t, ptok.AccessToken)
			if cl.Scope != tc.scope || strings.Join(cl.domains(), ",") != tc.domains || cl.budget("cloudflare") != tc.cloudflare || cl.budget("stripe") != "-" {
				t.Fatalf("issued %q %v cloudflare=%s stripe=%s", cl.Scope, cl.domains(), cl.budget("cloudflare"), cl.budget("stripe"))
			}
			if cl.Sub != pcl.Sub || !slices.Equal(cl.chain(), []string{"deployer", "planner"}) || cl.Psid != pcl.Sid {
				t.Fatalf("sub %s chain %v parent session %s; want %s, [deployer planner], %s", cl.Sub, cl.chain(), cl.Psid, pcl.Sub, pcl.Sid)
			}
			if tok.Expiry.After(ptok.Expiry.Add(time.Second)) {
				t.Fatalf("the sub-agent's token outlives its parent's")
			}
		})
	}
}

// TestDelegateRefreshesWithTheParent: when the sub-agent's token is due,
// its exchange asks the parent for a token that outlives the refresh, so
// the parent refreshes first and the child's new session hangs under the
// parent's new one.
func TestDelegateRefreshesWithTheParent(t *testing.T) {
	base := sandbox(t)
	c := newCounter()
	clk := newClock()
	parent := planner(t, base, c, agent.Config{Scope: []string{"catalog:read", "dns:read"}, Clock: clk.now, Jitter: -1})
	child, err := parent.Delegate(context.Background(), agent.Delegation{Actor: agent.DevAttestor(base, "deployer", nil), Scope: []string{"dns:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.exchanges() != 2 {
		t.Fatalf("%d exchanges, want 2 (parent, child)", c.exchanges())
	}
	clk.advance(9*time.Minute + 5*time.Second) // both are due (1m before a 10m expiry)
	tok, err := child.Token()
	if err != nil {
		t.Fatal(err)
	}
	ptok, err := parent.Token()
	if err != nil {
		t.Fatal(err)
	}
	if c.exchanges() != 4 {
		t.Fatalf("%d exchanges, want 4 (each refreshed once)", c.exchanges())
	}
	if cl, pcl := decode(t, tok.AccessToken), decode(t, ptok.AccessToken); cl.Psid != pcl.Sid {
		t.Fatalf("the child's new session's parent is %s, not the parent's new session %s", cl.Psid, pcl.Sid)
	}
}
