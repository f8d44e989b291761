//go:build !nosandbox

package sts_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestRefreshKeepsTheTaskSession: the agent holding a task token exchanges
// it again with its own attestation and gets a fresh token of the same
// session: same scope, resources and budget. It cannot widen or change
// them that way, another agent's exchange of the token is a delegation (a
// child session), and a revoked session cannot be refreshed.
func TestRefreshKeepsTheTaskSession(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	alice := f.user("alice@example.com")
	budget := `[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"},{"type":"tollgate:resources","domains":["shop.example"]}]`
	first := f.mustExchange(form(alice, idTok, f.agent("planner"), "scope", "dns:read dns:write", "authorization_details", budget))

	again := f.mustExchange(form(first.AccessToken, taskTok, f.agent("planner")))
	c1, c2 := f.claims(first.AccessToken), f.claims(again.AccessToken)
	if again.SessionID != first.SessionID || c2.SessionID != c1.SessionID {
		t.Fatalf("refresh opened session %s, want the same session %s", again.SessionID, first.SessionID)
	}
	if c2.ID == c1.ID || c2.Scope != c1.Scope || c2.ParentSessionID != c1.ParentSessionID ||
		strings.Join(c2.Act.Chain(), ",") != strings.Join(c1.Act.Chain(), ",") {
		t.Fatalf("refreshed claims %+v differ from %+v beyond jti and times", c2, c1)
	}
	if d1, d2 := detailsJSON(t, c1.AuthorizationDetails), detailsJSON(t, c2.AuthorizationDetails); d1 != d2 || !strings.Contains(d1, "20.00") {
		t.Fatalf("refresh changed the details: %s → %s", d1, d2)
	}
	// The refreshed token refreshes too, and both tokens are the session's.
	third := f.mustExchange(form(again.AccessToken, taskTok, f.agent("planner")))
	if third.SessionID != first.SessionID {
		t.Fatalf("a refresh of a refresh opened session %s", third.SessionID)
	}
	sess, err := f.sessions.Get(ctx, c1.Subject, c1.SessionID)
	if err != nil || len(sess.TokenHashes) != 3 {
		t.Fatalf("session %+v (%v), want 3 tokens", sess, err)
	}

	// A refresh may not ask for another scope or details.
	for _, kv := range [][]string{
		{"scope", "dns:read dns:write catalog:read"},
		{"scope", "dns:read"},
		{"authorization_details", `[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"99.00","currency":"usd"}]`},
	} {
		if _, e := f.exchange(form(again.AccessToken, taskTok, f.agent("planner"), kv...)); e == nil || e.Code != sts.ErrInvalidRequest {
			t.Fatalf("refresh asking %v: %v, want invalid_request", kv, e)
		}
	}
	// The same scope, named, is a refresh.
	if r := f.mustExchange(form(again.AccessToken, taskTok, f.agent("planner"), "scope", "dns:write dns:read")); r.SessionID != first.SessionID {
		t.Fatal("a refresh naming its own scope opened a new session")
	}

	// Another agent's exchange of the token is a delegation.
	child := f.mustExchange(form(again.AccessToken, taskTok, f.agent("deployer")))
	if child.SessionID == first.SessionID || f.claims(child.AccessToken).ParentSessionID != first.SessionID {
		t.Fatalf("deployer's exchange: session %s parent %s", child.SessionID, f.claims(child.AccessToken).ParentSessionID)
	}
	// The sub-agent refreshes its own session.
	childAgain := f.mustExchange(form(child.AccessToken, taskTok, f.agent("deployer")))
	if childAgain.SessionID != child.SessionID {
		t.Fatalf("the sub-agent's refresh opened %s, want %s", childAgain.SessionID, child.SessionID)
	}

	// Revoked: no refresh, for the session or its child.
	if _, err := f.sessions.Revoke(ctx, c1.Subject, c1.SessionID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, e := f.exchange(form(again.AccessToken, taskTok, f.agent("planner"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("refresh of a revoked session: %v, want invalid_grant", e)
	}
	if _, e := f.exchange(form(childAgain.AccessToken, taskTok, f.agent("deployer"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("refresh of a revoked session's child: %v, want invalid_grant", e)
	}
}

// TestRefreshStopsAtMaxTaskLife: refreshes keep a session going at most
// MaxTaskLife after it opened; the last token ends there, and then the
// refresh is refused.
func TestRefreshStopsAtMaxTaskLife(t *testing.T) {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { rdb.Close() })
	f := newFixtureWith(t, rdb, nil, func(c *sts.Config) { c.MaxTaskLife = 3 * time.Second })
	first := f.mustExchange(form(f.user("alice@example.com"), idTok, f.agent("planner"), "scope", "dns:read"))
	again := f.mustExchange(form(first.AccessToken, taskTok, f.agent("planner")))
	if again.ExpiresIn > 3 {
		t.Fatalf("refreshed token lives %ds, past the task's 3s life", again.ExpiresIn)
	}
	time.Sleep(3 * time.Second)
	if _, e := f.exchange(form(first.AccessToken, taskTok, f.agent("planner"))); e == nil || e.Code != sts.ErrInvalidGrant {
		t.Fatalf("refresh past the task's life: %v, want invalid_grant", e)
	}
}

func detailsJSON(t *testing.T, d auth.AuthorizationDetails) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
