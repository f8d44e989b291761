package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// sdkProtocolVersion is the newest protocol version @modelcontextprotocol/sdk
// 1.32.2 speaks (its LATEST_PROTOCOL_VERSION), which it asks for in
// initialize. A server that answers with an older version than the client
// asked for, when it supports that one, has a negotiation bug.
const sdkProtocolVersion = "2025-11-25"

// TestTypeScriptSDKClient drives the built binary with the official
// TypeScript SDK client over Streamable HTTP and over stdio (SPEC §14).
func TestTypeScriptSDKClient(t *testing.T) {
	tsClient(t) // fail (or skip knowingly) before building anything
	bin := testkit.Binary(t)

	transports := []struct {
		name string
		args func(t *testing.T) []string
		// who checks whoami: the human and the agent of the task token.
		who func(t *testing.T, principal string, actors []string)
	}{
		{"http", func(t *testing.T) []string {
			srv := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
			tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "catalog:read"})
			return []string{"--http", srv.URL + "/mcp", "--header", "Authorization: Bearer " + tok}
		}, func(t *testing.T, principal string, actors []string) {
			if principal != "user:alice@example.com" || len(actors) != 1 || actors[0] != "spiffe://tollgate.sandbox/agent/agent" {
				t.Errorf("whoami over HTTP: principal %q actors %v", principal, actors)
			}
		}},
		{"stdio", func(t *testing.T) []string {
			// No token: the sandbox attests the parent (node) and mints a
			// session for the local OS user.
			return []string{"--stdio", bin, "--arg", "stdio", "--env", "TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)}
		}, func(t *testing.T, principal string, actors []string) {
			// The attested parent is node, running the SDK client.
			if !strings.HasPrefix(principal, "user:") || !strings.HasSuffix(principal, "@localhost") ||
				len(actors) != 1 || !strings.HasPrefix(actors[0], "unix:uid=") || !strings.Contains(actors[0], ":sha256=") {
				t.Errorf("whoami over stdio: principal %q actors %v", principal, actors)
			}
		}},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			args := tr.args(t)

			// tools/list comes first so that the SDK validates every later
			// structuredContent against the tool's outputSchema (it caches the
			// validators from tools/list) and refuses the step if it does not fit.
			out := runTS(t, []step{
				listTools(),
				callTool("catalog_search", map[string]any{"query": "domain"}),
				callTool("catalog_search", map[string]any{"query": "domain", "querry": "typo"}),
				callTool("whoami", map[string]any{}),
			}, args...)
			if out.ProtocolVersion != sdkProtocolVersion {
				t.Errorf("negotiated protocol version %q, want %q (the SDK's newest)", out.ProtocolVersion, sdkProtocolVersion)
			}
			assertCatalogTools(t, out.Results[0])
			firstID := assertSearchFindsDomains(t, out.Results[1])
			assertToolError(t, "catalog_search with an unknown argument", out.Results[2])
			var who callResult
			decodeResult(t, "whoami", out.Results[3], &who)
			var w struct {
				Principal string   `json:"principal"`
				Actors    []string `json:"actors"`
			}
			if err := json.Unmarshal(who.StructuredContent, &w); err != nil || who.IsError {
				t.Fatalf("whoami: %s", out.Results[3])
			}
			tr.who(t, w.Principal, w.Actors)

			if firstID == "" {
				return
			}
			out = runTS(t, []step{
				listTools(),
				callTool("catalog_get", map[string]any{"id": firstID}),
				callTool("catalog_get", map[string]any{"id": "cloudflare/no-such-service"}),
			}, args...)
			var get callResult
			decodeResult(t, "catalog_get", out.Results[1], &get)
			if get.IsError {
				t.Fatalf("catalog_get %q: isError: %s", firstID, out.Results[1])
			}
			var svc struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(get.StructuredContent, &svc); err != nil || svc.ID != firstID {
				t.Errorf("catalog_get %q returned id %q (err %v): %s", firstID, svc.ID, err, get.StructuredContent)
			}
			t.Run("refusal", func(t *testing.T) {
				assertRefusal(t, "catalog_get of an unknown id", out.Results[2], "not_found")
			})
		})
	}
}

// callResult is the part of a CallToolResult the assertions read.
type callResult struct {
	IsError           bool            `json:"isError"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Content           []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	Error *struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
	} `json:"error"` // set by client.mjs when the request itself failed
}

// decodeResult decodes one step's result into v, failing the test when the
// step failed as a request (client.mjs then prints {"error": {...}}; no MCP
// result has a top-level "error").
func decodeResult(t *testing.T, what string, raw json.RawMessage, v any) {
	t.Helper()
	var failed struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &failed); err != nil {
		t.Fatalf("%s: cannot decode result %s: %v", what, raw, err)
	}
	if failed.Error != nil {
		t.Fatalf("%s: the request failed: %s", what, failed.Error)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: cannot decode result %s: %v", what, raw, err)
	}
}

// assertCatalogTools: both catalog tools are listed with honest annotations.
func assertCatalogTools(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var list struct {
		Tools []struct {
			Name        string `json:"name"`
			Annotations struct {
				ReadOnlyHint    *bool `json:"readOnlyHint"`
				DestructiveHint *bool `json:"destructiveHint"`
			} `json:"annotations"`
			OutputSchema json.RawMessage `json:"outputSchema"`
		} `json:"tools"`
	}
	decodeResult(t, "tools/list", raw, &list)
	seen := map[string]bool{}
	for _, tool := range list.Tools {
		seen[tool.Name] = true
		if tool.Name != "catalog_search" && tool.Name != "catalog_get" {
			continue
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || !*a.ReadOnlyHint {
			t.Errorf("%s: readOnlyHint is not true", tool.Name)
		}
		if a.DestructiveHint == nil || *a.DestructiveHint {
			t.Errorf("%s: destructiveHint is not false (an absent hint means true)", tool.Name)
		}
		if len(tool.OutputSchema) == 0 {
			t.Errorf("%s: no outputSchema, so the SDK cannot check its structured content", tool.Name)
		}
	}
	for _, name := range []string{"catalog_search", "catalog_get"} {
		if !seen[name] {
			t.Errorf("tools/list does not list %s: %s", name, raw)
		}
	}
}

// assertSearchFindsDomains: a search for "domain" finds at least twelve
// services, each priced in integer minor units. It returns the first id.
func assertSearchFindsDomains(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var res callResult
	decodeResult(t, "catalog_search", raw, &res)
	if res.IsError {
		t.Fatalf("catalog_search: isError: %s", raw)
	}
	var found struct {
		Services []struct {
			ID      string `json:"id"`
			Pricing struct {
				AmountMinor json.RawMessage `json:"amount_minor"`
				Currency    string          `json:"currency"`
			} `json:"pricing"`
		} `json:"services"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(res.StructuredContent, &found); err != nil {
		t.Fatalf("catalog_search: structuredContent %s: %v", res.StructuredContent, err)
	}
	if len(found.Services) < 12 {
		t.Errorf("catalog_search domain: %d services, want at least 12", len(found.Services))
	}
	if found.Count != len(found.Services) {
		t.Errorf("catalog_search: count %d, but %d services", found.Count, len(found.Services))
	}
	for _, s := range found.Services {
		// Money is integer minor units (SPEC §6): 1044, never 10.44, "1044" or 1.044e3.
		if _, err := strconv.ParseInt(string(s.Pricing.AmountMinor), 10, 64); err != nil {
			t.Errorf("%s: pricing.amount_minor is %s, not an integer", s.ID, s.Pricing.AmountMinor)
		}
		if s.ID == "" || s.Pricing.Currency == "" {
			t.Errorf("service without id or currency: %+v", s)
		}
	}
	if len(found.Services) == 0 {
		return ""
	}
	return found.Services[0].ID
}

// assertToolError: the call was refused as a tool error (isError, so the
// model sees why), not as a protocol error.
func assertToolError(t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	var res callResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%s: cannot decode result %s: %v", what, raw, err)
	}
	if res.Error != nil {
		t.Fatalf("%s: a protocol error (code %d: %s), want a tool result with isError", what, res.Error.Code, res.Error.Message)
	}
	if !res.IsError {
		t.Errorf("%s: isError is false: %s", what, raw)
	}
}

// assertRefusal: a refusal by tollgate itself (tools.Refuse) reaches an SDK
// client as a tool result with isError and the stable code in
// structuredContent.error.code, not as a protocol error.
func assertRefusal(t *testing.T, what string, raw json.RawMessage, code string) {
	t.Helper()
	var res callResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%s: cannot decode result %s: %v", what, raw, err)
	}
	if res.Error != nil {
		t.Fatalf("%s: a protocol error (code %d: %s), want a tool result with isError", what, res.Error.Code, res.Error.Message)
	}
	if !res.IsError {
		t.Fatalf("%s: isError is false: %s", what, raw)
	}
	if len(res.StructuredContent) == 0 {
		// Without structured content the code leads the text: "not_found: ...".
		if len(res.Content) == 0 || !strings.HasPrefix(res.Content[0].Text, code+": ") {
			t.Errorf("%s: no structuredContent and the text does not start with %q: %s", what, code+": ", raw)
		}
		return
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.StructuredContent, &body); err != nil || body.Error.Code != code {
		t.Errorf("%s: structuredContent.error.code %q (err %v), want %q: %s", what, body.Error.Code, err, code, raw)
	}
}
