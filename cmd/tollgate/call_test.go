package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestCall drives tollgate call, the binary, against a sandbox server it
// starts: a first call that just works, a gate answered with --answer,
// one declined, one parked for a client without elicitation, --list, and
// bad usage.
func TestCall(t *testing.T) {
	bin := testkit.Binary(t)
	p := testkit.Serve(t, bin, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)})
	testkit.LinkAccount(t, p.URL, "carol@example.com")
	tok := testkit.TaskToken(t, p.URL, testkit.Grant{Email: "carol@example.com",
		Scope:   "domain:register deploy:preview deploy:production catalog:read",
		Details: `[{"type":"tollgate:resources","domains":["call-shop.com"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]`})
	env := []string{"TOLLGATE_TOKEN=" + tok, "TOLLGATE_CALL_URL=" + p.URL}
	call := func(args ...string) (map[string]any, string, int) {
		t.Helper()
		out, stderr, code := runBin(t, env, append([]string{"call"}, args...)...)
		var m map[string]any
		if strings.HasPrefix(strings.TrimSpace(out), "{") {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("call %v: stdout is not JSON: %v\n%s", args, err, out)
			}
		}
		return m, stderr, code
	}

	t.Run("whoami --json on a first request", func(t *testing.T) {
		out, stderr, code := runBin(t, nil, "call", "whoami", "--url", p.URL+"/mcp", "--token", tok, "--json")
		var who map[string]any
		if code != exitOK || json.Unmarshal([]byte(out), &who) != nil || who["principal"] != "user:carol@example.com" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})

	t.Run("without --url it calls the server TOLLGATE_ISSUER names", func(t *testing.T) {
		out, stderr, code := runBin(t, []string{"TOLLGATE_ISSUER=" + p.URL, "TOLLGATE_TOKEN=" + tok}, "call", "whoami", "--json")
		var who map[string]any
		if code != exitOK || json.Unmarshal([]byte(out), &who) != nil || who["principal"] != "user:carol@example.com" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})

	// A registration under the purchase gate's threshold, and a preview:
	// what the production gate is about.
	if reg, stderr, code := call("domain_register", `{"domain":"call-shop.com","idempotency_key":"call-shop-1"}`, "--json"); code != exitOK || reg["status"] != "registered" {
		t.Fatalf("domain_register: exit %d %v %s", code, reg, stderr)
	}
	pv, stderr, code := call("deploy_preview", `{"name":"call--shop-com","script":"export default {};\n"}`, "--json")
	id, _ := pv["preview_id"].(string)
	if code != exitOK || id == "" {
		t.Fatalf("deploy_preview: exit %d %v %s", code, pv, stderr)
	}
	promote := `{"name":"call--shop-com","preview_id":"` + id + `"}`

	t.Run("a gate without an answer and no terminal is bad usage", func(t *testing.T) {
		_, stderr, code := call("deploy_promote", promote)
		if code != exitUsage || !strings.Contains(stderr, "--answer approve=") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("--decline declines the gate", func(t *testing.T) {
		out, stderr, code := call("deploy_promote", promote, "--decline", "--json")
		if e, _ := out["error"].(map[string]any); code != exitRefused || e["code"] != "gate_declined" || e["provider_called"] != false {
			t.Fatalf("exit %d, %v, stderr %q", code, out, stderr)
		}
	})
	t.Run("--no-elicitation gets approval_required", func(t *testing.T) {
		out, stderr, code := call("deploy_promote", promote, "--no-elicitation", "--json")
		e, _ := out["error"].(map[string]any)
		d, _ := e["details"].(map[string]any)
		if code != exitRefused || e["code"] != "approval_required" || d["approval_id"] == nil || !strings.Contains(stderr, "approval_required") {
			t.Fatalf("exit %d, %v, stderr %q", code, out, stderr)
		}
	})
	t.Run("--answer answers the production gate", func(t *testing.T) {
		out, stderr, code := call("deploy_promote", promote, "--answer", "approve=yes", "--json")
		if code != exitOK || out["name"] != "call--shop-com" || out["sha256"] == nil {
			t.Fatalf("exit %d, %v, stderr %q", code, out, stderr)
		}
		if !strings.Contains(stderr, "Promote to production") || !strings.Contains(stderr, `accept {"approve":true}`) {
			t.Fatalf("the gate was not shown on stderr: %q", stderr)
		}
	})
	t.Run("a refusal is exit 1 with its code", func(t *testing.T) {
		_, stderr, code := call("domain_register", `{"domain":"someone-else.com"}`)
		if code != exitRefused || !strings.Contains(stderr, "domain_register refused:") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("a scope the token lacks is named", func(t *testing.T) {
		_, stderr, code := call("domain_check", `{"domain":"call-shop.com"}`)
		if code != exitRefused || !strings.Contains(stderr, "insufficient_scope") || !strings.Contains(stderr, `"domain:read"`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("a URL gate prints the link and cancels at the end of input", func(t *testing.T) {
		billing := testkit.TaskToken(t, p.URL, testkit.Grant{Email: "carol@example.com", Scope: "billing:setup"})
		out, stderr, code := runBin(t, []string{"TOLLGATE_TOKEN=" + billing, "TOLLGATE_CALL_URL=" + p.URL}, "call", "billing_setup", "--json")
		var res map[string]any
		_ = json.Unmarshal([]byte(out), &res)
		e, _ := res["error"].(map[string]any)
		if code != exitRefused || e["code"] != "gate_cancelled" || !strings.Contains(stderr, "open: "+p.URL+"/approvals/") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("--list names each tool's scopes", func(t *testing.T) {
		out, stderr, code := runBin(t, env, "call", "--list", "--json")
		var list []listedTool
		if code != exitOK || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		byName := map[string]listedTool{}
		for _, lt := range list {
			byName[lt.Name] = lt
		}
		if r := byName["domain_register"]; len(r.Scopes) != 1 || r.Scopes[0] != "domain:register" || len(r.Gates) != 1 || r.Gates[0] != "purchase" {
			t.Fatalf("domain_register listed as %+v", r)
		}
		if w, ok := byName["whoami"]; !ok || len(w.Scopes) != 0 || !w.ReadOnly {
			t.Fatalf("whoami listed as %+v", w)
		}
		text, _, code := runBin(t, env, "call", "--list")
		if code != exitOK || !strings.Contains(text, "deploy_promote") || !strings.Contains(text, "deploy:production") {
			t.Fatalf("--list: exit %d\n%s", code, text)
		}
	})
	t.Run("--stdio runs this binary's stdio server", func(t *testing.T) {
		out, stderr, code := runBin(t, []string{"TOLLGATE_REDIS_URL=" + testkit.RedisURL(t)}, "call", "--stdio", "whoami", "--json")
		var who map[string]any
		if code != exitOK || json.Unmarshal([]byte(out), &who) != nil || !strings.HasPrefix(who["principal"].(string), "user:") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})

	usageCases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown tool", env, []string{"whoarewe"}, "tollgate call --list"},
		{"arguments that are not JSON", env, []string{"domain_check", "{domain:"}, "one JSON object"},
		{"arguments that are a JSON array", env, []string{"domain_check", "[]"}, "one JSON object"},
		{"no token", []string{"TOLLGATE_TOKEN=", "TOLLGATE_CALL_URL=" + p.URL}, []string{"whoami"}, "TOLLGATE_TOKEN"},
		{"no tool", env, nil, "name the tool"},
		{"an --answer without =", env, []string{"whoami", "--answer", "approve"}, "field=value"},
		{"an answer of the wrong type", env, []string{"deploy_promote", promote, "--answer", "approve=perhaps"}, "yes or no"},
		{"child flags without --stdio", env, []string{"whoami", "--", "--domains", "a.com"}, "--stdio"},
		{"a URL that is not one", env, []string{"whoami", "--url", "ftp://x"}, "--url"},
	}
	for _, tc := range usageCases {
		t.Run("bad usage: "+tc.name, func(t *testing.T) {
			_, stderr, code := runBin(t, tc.env, append([]string{"call"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d; stderr %q does not say %q", code, exitUsage, stderr, tc.want)
			}
		})
	}
}
