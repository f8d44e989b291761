package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestTwoReplicasAreOneSystem: two `tollgate serve` processes on one Redis
// accept each other's tokens and see each other's revocations (SPEC §2, §13).
func TestTwoReplicasAreOneSystem(t *testing.T) {
	bin := testkit.Binary(t)
	shared := []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t), "TOLLGATE_PUBLIC_URL=http://127.0.0.1:7999"}
	a := testkit.Serve(t, bin, shared)
	b := testkit.Serve(t, bin, shared)

	// Dev identity and the exchange at A; the sub-agent's exchange at B.
	parent := testkit.TaskToken(t, a.URL, testkit.Grant{Agent: "planner", Scope: "catalog:read spend:read"})
	child := testkit.TaskToken(t, b.URL, testkit.Grant{Agent: "deployer", Subject: parent, Scope: "catalog:read"})

	onB := testkit.HTTP(t, b.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(child)})
	who := callWhoami(t, onB)
	if who.IsError {
		t.Fatalf("B refused a token whose parent A issued: %+v", who)
	}
	var w struct {
		Principal string   `json:"principal"`
		Actors    []string `json:"actors"`
	}
	b2, _ := json.Marshal(who.StructuredContent)
	_ = json.Unmarshal(b2, &w)
	if w.Principal != "user:alice@example.com" || len(w.Actors) != 2 {
		t.Fatalf("whoami on B: %s", b2)
	}

	// Revoke the parent at A: the child's next call at B fails.
	resp, err := http.PostForm(a.URL+"/oauth/revoke", url.Values{"token": {parent}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	who = callWhoami(t, onB)
	sc, _ := json.Marshal(who.StructuredContent)
	var refused struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(sc, &refused)
	if !who.IsError || refused.Error.Code != "session_revoked" {
		t.Fatalf("B after A revoked the parent: %s", sc)
	}
}

func callWhoami(t *testing.T, c *client.Client) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return res
}
