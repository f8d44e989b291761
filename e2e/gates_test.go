package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func liveScripts(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/dev/cloudflare/scripts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Scripts
}

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
// (2025-11-25, elicitation/create bridged by the server): deploy_preview,
// deploy_promote declined → nothing changes, accepted → live; a client
// without elicitation gets approval_required, the operator approves with
// `tollgate approvals approve ID`, and the retry goes live.
func TestTypeScriptSDKProductionGate(t *testing.T) {
	tsClient(t)
	bin := testkit.Binary(t)
	redisURL := testkit.RedisURL(t)
	srv := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + redisURL})
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "deploy:preview deploy:production"})
	args := []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}
	const v1, v2 = "export default { fetch() { return new Response('v1') } };\n", "export default { fetch() { return new Response('v2') } };\n"

	out := runTS(t, tsScript{Elicit: map[string]any{"action": "accept", "content": map[string]any{"approve": true}}, Steps: []step{
		listTools(),
		callTool("deploy_preview", map[string]any{"name": "ts-shop", "script": v1}),
	}}, args...)
	id1, _ := structuredOf(t, out.Results[1])["preview_id"].(string)
	out = runTS(t, tsScript{Elicit: map[string]any{"action": "accept", "content": map[string]any{"approve": true}}, Steps: []step{
		callTool("deploy_promote", map[string]any{"name": "ts-shop", "preview_id": id1}),
		callTool("deploy_preview", map[string]any{"name": "ts-shop", "script": v2}),
	}}, args...)
	if m := structuredOf(t, out.Results[0]); m["isError"] == true {
		t.Fatalf("first promote: %v", m)
	}
	live := liveScripts(t, srv.URL)["ts-shop"]
	id2, _ := structuredOf(t, out.Results[1])["preview_id"].(string)

	// Declined: nothing changes.
	out = runTS(t, tsScript{Elicit: map[string]any{"action": "decline"}, Steps: []step{
		callTool("deploy_promote", map[string]any{"name": "ts-shop", "preview_id": id2}),
	}}, args...)
	if code := codeOf(structuredOf(t, out.Results[0])); code != "gate_declined" {
		t.Fatalf("declined promote: %q", code)
	}
	if len(out.Elicitations) != 1 || !bytes.Contains(out.Elicitations[0], []byte("First changed lines")) {
		t.Fatalf("the human was not shown the change: %s", out.Elicitations)
	}
	if got := liveScripts(t, srv.URL)["ts-shop"]; got != live {
		t.Fatal("production changed after a decline")
	}

	// No elicitation capability: approval_required, the CLI approves, the
	// retry with approval_id goes live.
	out = runTS(t, []step{callTool("deploy_promote", map[string]any{"name": "ts-shop", "preview_id": id2})}, args...)
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
	out = runTS(t, []step{callTool("deploy_promote", map[string]any{"name": "ts-shop", "preview_id": id2, "approval_id": approval})}, args...)
	if m := structuredOf(t, out.Results[0]); m["isError"] == true {
		t.Fatalf("retry after approval: %v", m)
	}
	if got := liveScripts(t, srv.URL)["ts-shop"]; got == live {
		t.Fatal("production did not change after the approved retry")
	}
}
