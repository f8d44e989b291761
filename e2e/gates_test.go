package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func structuredOf(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var res callResult
	decodeResult(t, "step", raw, &res)
	var m map[string]any
	_ = json.Unmarshal(res.StructuredContent, &m)
	if res.IsError {
		m["isError"] = true
	}
	return m
}

func codeOf(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestTypeScriptSDKProductionGate: through the official TypeScript SDK
// (2025-11-25, elicitation/create bridged by the server), in the account
// alice linked and on the domain she registered there: deploy_preview,
// deploy_promote declined → nothing changes, accepted → live; a client
// without elicitation gets approval_required, the operator approves with
// `tollgate approvals approve ID`, and the retry goes live.
func TestTypeScriptSDKProductionGate(t *testing.T) {
	tsClient(t)
	bin := testkit.Binary(t)
	redisURL := testkit.RedisURL(t)
	srv := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + redisURL})
	const domain = "ts-shop.com"
	worker := workerName(domain) // ts--shop-com
	acct := provision(t, srv.URL, "alice@example.com", domain)
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "deploy:preview deploy:production", Details: resourcesOnly(domain)})
	args := []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}
	const v1, v2 = "export default { fetch() { return new Response('v1') } };\n", "export default { fetch() { return new Response('v2') } };\n"
	// deployed: the result names the Worker, the domain it serves and
	// alice's account.
	deployed := func(what string, raw json.RawMessage) map[string]any {
		t.Helper()
		m := storyStep(t, what, raw)
		wantField(t, what, m, "name", worker)
		wantField(t, what, m, "domain", domain)
		wantField(t, what, m, "account_id", acct)
		return m
	}

	out := runTS(t, tsScript{Elicit: map[string]any{"action": "accept", "content": map[string]any{"approve": true}}, Steps: []step{
		listTools(),
		callTool("deploy_preview", map[string]any{"name": worker, "script": v1}),
	}}, args...)
	id1, _ := deployed("deploy_preview", out.Results[1])["preview_id"].(string)
	out = runTS(t, tsScript{Elicit: map[string]any{"action": "accept", "content": map[string]any{"approve": true}}, Steps: []step{
		callTool("deploy_promote", map[string]any{"name": worker, "preview_id": id1}),
		callTool("deploy_preview", map[string]any{"name": worker, "script": v2}),
	}}, args...)
	first := deployed("first promote", out.Results[0])
	live := liveScripts(t, srv.URL, acct)[worker]
	if live == "" || live != first["sha256"] {
		t.Fatalf("after the first promote %s is live with %q in account %s, want %v", worker, live, acct, first["sha256"])
	}
	second := deployed("second preview", out.Results[1])
	id2, _ := second["preview_id"].(string)

	// Declined: nothing changes.
	out = runTS(t, tsScript{Elicit: map[string]any{"action": "decline"}, Steps: []step{
		callTool("deploy_promote", map[string]any{"name": worker, "preview_id": id2}),
	}}, args...)
	if code := codeOf(structuredOf(t, out.Results[0])); code != "gate_declined" {
		t.Fatalf("declined promote: %q", code)
	}
	if len(out.Elicitations) != 1 || !bytes.Contains(out.Elicitations[0], []byte("First changed lines")) {
		t.Fatalf("the human was not shown the change: %s", out.Elicitations)
	}
	if got := liveScripts(t, srv.URL, acct)[worker]; got != live {
		t.Fatal("production changed after a decline")
	}

	// No elicitation capability: approval_required, the CLI approves, the
	// retry with approval_id goes live.
	out = runTS(t, []step{callTool("deploy_promote", map[string]any{"name": worker, "preview_id": id2})}, args...)
	m := structuredOf(t, out.Results[0])
	if codeOf(m) != "approval_required" {
		t.Fatalf("client without elicitation: %v", m)
	}
	approval := m["error"].(map[string]any)["details"].(map[string]any)["approval_id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := exec.CommandContext(ctx, bin, "approvals", "approve", approval, "--redis-url", redisURL)
	if b, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(b), approval) {
		t.Fatalf("tollgate approvals approve: %v\n%s", err, b)
	}
	out = runTS(t, []step{callTool("deploy_promote", map[string]any{"name": worker, "preview_id": id2, "approval_id": approval})}, args...)
	deployed("retry after approval", out.Results[0])
	if got := liveScripts(t, srv.URL, acct)[worker]; got == live || got != second["sha256"] {
		t.Fatalf("after the approved retry %s is live with %q, want the second preview's %v", worker, got, second["sha256"])
	}
}
