package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

// inspected is the --json output of token inspect.
type inspected struct {
	Header struct {
		Typ string `json:"typ"`
	} `json:"header"`
	Claims struct {
		Sub       string `json:"sub"`
		Sid       string `json:"sid"`
		ParentSid string `json:"parent_sid"`
		ClientID  string `json:"client_id"`
	} `json:"claims"`
	Chain    []string `json:"chain"`
	Verified bool     `json:"verified"`
}

// TestCLIDelegationStory scripts the CLI as a user would: log in, attest two
// agents, delegate to one and sub-delegate to the other, look at the tokens
// and sessions, then revoke the task and see the sub-agent's token refused.
func TestCLIDelegationStory(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	p := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + redisURL})
	// The issuer comes from the env twin; the Redis URL from the flag, except
	// for session list, which takes the env twin.
	env := []string{"TOLLGATE_ISSUER=" + p.URL, "TOLLGATE_REDIS_URL="}
	dir := t.TempDir()

	ok := func(args ...string) (stdout, stderr string) {
		t.Helper()
		stdout, stderr, code := runBin(t, env, args...)
		if code != exitOK {
			t.Fatalf("tollgate %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, stderr)
		}
		return stdout, stderr
	}
	// tokenOut checks a token-printing command printed the token alone.
	tokenOut := func(args ...string) string {
		t.Helper()
		out, _ := ok(args...)
		tok, rest, _ := strings.Cut(out, "\n")
		if rest != "" || strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \t") {
			t.Fatalf("tollgate %s: stdout is not one token and a newline: %q", strings.Join(args, " "), out)
		}
		return tok
	}
	inspect := func(tok string) inspected {
		t.Helper()
		path := filepath.Join(dir, "inspect.jwt")
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr := ok("token", "inspect", "@"+path, "--json")
		if !strings.Contains(stderr, "not verified") {
			t.Errorf("token inspect does not say on stderr that it did not verify: %q", stderr)
		}
		var got inspected
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("token inspect --json: %v\n%s", err, out)
		}
		if got.Verified {
			t.Error("token inspect claims a token it only decoded is verified")
		}
		return got
	}
	const (
		alice    = "user:alice@example.com"
		planner  = "spiffe://tollgate.sandbox/agent/planner"
		deployer = "spiffe://tollgate.sandbox/agent/deployer"
	)

	user := tokenOut("dev", "login", "--user", "alice@example.com", "--scope", "dns:read dns:write")
	plannerAtt := tokenOut("dev", "agent-token", "--agent", "planner")
	deployerAtt := tokenOut("dev", "agent-token", "--agent", "deployer")

	// Delegation: planner acts for alice. The user token's type is guessed.
	task := tokenOut("token", "exchange", "--issuer", p.URL, "--subject-token", user,
		"--actor-token", plannerAtt, "--scope", "dns:read dns:write", "--description", "set up DNS", "--token-only")
	top := inspect(task)
	if top.Header.Typ != "at+jwt" || top.Claims.Sub != alice || top.Claims.ClientID != planner || top.Claims.Sid == "" {
		t.Fatalf("task token: %+v", top)
	}
	if want := []string{alice, planner}; !slices.Equal(top.Chain, want) {
		t.Fatalf("task token chain %q, want %q", top.Chain, want)
	}

	// Sub-delegation: deployer acts for planner's task. The subject (a task
	// token) is read from a file and sent as access_token without being told.
	taskFile := filepath.Join(dir, "task.jwt")
	if err := os.WriteFile(taskFile, []byte(task+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := tokenOut("token", "exchange", "--issuer", p.URL, "--subject-token", "@"+taskFile,
		"--actor-token", deployerAtt, "--scope", "dns:read", "--token-only")
	child := inspect(sub)
	if want := []string{alice, planner, deployer}; !slices.Equal(child.Chain, want) {
		t.Fatalf("sub-agent token chain %q, want %q", child.Chain, want)
	}
	if child.Claims.ParentSid != top.Claims.Sid || child.Claims.Sid == top.Claims.Sid {
		t.Fatalf("sub-agent session %q parent %q, want a new session under %q", child.Claims.Sid, child.Claims.ParentSid, top.Claims.Sid)
	}

	// The same from stdin, in the human form: the chain is drawn as a tree.
	human := runStdin(t, env, sub, "token", "inspect", "-")
	for _, want := range []string{"principal   " + alice, "  └─ " + planner, "     └─ " + deployer + "   (client_id, acting now)"} {
		if !strings.Contains(human, want) {
			t.Errorf("token inspect - does not show %q:\n%s", want, human)
		}
	}

	// A sub-agent cannot widen its upstream's scope.
	_, stderr, code := runBin(t, env, "token", "exchange", "--issuer", p.URL, "--subject-token", task,
		"--actor-token", deployerAtt, "--scope", "dns:read dns:write ssl:write")
	if code != exitRefused || !strings.HasPrefix(stderr, "tollgate: invalid_scope: ") {
		t.Fatalf("widening exchange: exit %d, stderr %q; want exit 1 and invalid_scope", code, stderr)
	}

	// The deployment's sessions, through its Redis (env twin).
	out, _, code := runBin(t, []string{"TOLLGATE_REDIS_URL=" + redisURL}, "session", "list", "--json")
	if code != exitOK {
		t.Fatalf("session list: exit %d", code)
	}
	var list []sessions.Session
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("session list --json: %v\n%s", err, out)
	}
	if got, want := sessionIDs(list), sorted(top.Claims.Sid, child.Claims.Sid); !slices.Equal(got, want) {
		t.Fatalf("session list: %q, want %q", got, want)
	}

	out, _ = ok("session", "show", top.Claims.Sid, "--redis-url", redisURL, "--json")
	var tree sessions.Node
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		t.Fatalf("session show --json: %v\n%s", err, out)
	}
	if tree.ID != top.Claims.Sid || tree.Description != "set up DNS" || len(tree.Children) != 1 || tree.Children[0].ID != child.Claims.Sid {
		t.Fatalf("session show: %+v", tree)
	}
	out, _ = ok("session", "show", top.Claims.Sid, "--redis-url", redisURL)
	if !strings.Contains(out, "└─ "+child.Claims.Sid+"  active") {
		t.Errorf("session show does not draw the child under the parent:\n%s", out)
	}

	// Revoking the parent revokes the child, and says so.
	out, stderr = ok("session", "revoke", top.Claims.Sid, "--reason", "task cancelled", "--redis-url", redisURL)
	if got, want := sorted(strings.Fields(out)...), sorted(top.Claims.Sid, child.Claims.Sid); !slices.Equal(got, want) {
		t.Fatalf("session revoke printed %q, want %q", got, want)
	}
	if !strings.Contains(stderr, `msg="task sessions revoked"`) || !strings.Contains(stderr, "operator=") {
		t.Errorf("session revoke logged no audit line: %q", stderr)
	}
	// Revoking is idempotent; --json says what was revoked.
	out, _ = ok("session", "revoke", top.Claims.Sid, "--json", "--redis-url", redisURL)
	var rv revokeJSON
	if err := json.Unmarshal([]byte(out), &rv); err != nil || rv.Session != top.Claims.Sid || !rv.Complete ||
		!slices.Equal(sorted(rv.Revoked...), sorted(top.Claims.Sid, child.Claims.Sid)) {
		t.Fatalf("session revoke --json: %v %q", err, out)
	}
	out, _ = ok("session", "list", "--status", "revoked", "--json", "--redis-url", redisURL)
	list = nil
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Fatalf("revoked sessions: %v %s", err, out)
	}

	// The revoked sub-agent token no longer delegates.
	auditorAtt := tokenOut("dev", "agent-token", "--agent", "auditor")
	_, stderr, code = runBin(t, env, "token", "exchange", "--issuer", p.URL, "--subject-token", sub, "--actor-token", auditorAtt)
	if code != exitRefused || !strings.HasPrefix(stderr, "tollgate: invalid_grant: ") {
		t.Fatalf("exchange of a revoked token: exit %d, stderr %q; want exit 1 and invalid_grant", code, stderr)
	}
}

// TestCLIRefusals pins the exit status and reason of each way a command can
// be misused or refused.
func TestCLIRefusals(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	jwe := strings.Repeat("e30.", 4) + "e30"
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // on stderr
	}{
		{"dev login without user", nil, []string{"dev", "login"}, exitUsage, "--user"},
		{"dev agent-token without agent", nil, []string{"dev", "agent-token"}, exitUsage, "--agent"},
		{"dev without subcommand", nil, []string{"dev"}, exitUsage, "needs a subcommand"},
		{"unknown subcommand", nil, []string{"token", "mint"}, exitUsage, `unknown command "mint"`},
		{"issuer not a URL", nil, []string{"dev", "login", "--user", "a@example.com", "--issuer", "ftp://x"}, exitUsage, "--issuer"},
		{"no server running", nil, []string{"dev", "login", "--user", "a@example.com", "--issuer", "http://127.0.0.1:1"}, exitRefused, "tollgate serve"},
		{"exchange without subject", nil, []string{"token", "exchange"}, exitUsage, "--subject-token"},
		{"bad subject token type", nil, []string{"token", "exchange", "--subject-token", "a.b.c", "--subject-token-type", "saml"}, exitUsage, "--subject-token-type"},
		{"two values from stdin", nil, []string{"token", "exchange", "--subject-token", "-", "--actor-token", "-"}, exitUsage, "stdin"},
		{"details not JSON", nil, []string{"token", "exchange", "--subject-token", "a.b.c", "--authorization-details", "[{"}, exitUsage, "--authorization-details"},
		{"subject file missing", nil, []string{"token", "exchange", "--subject-token", "@/nonexistent/token"}, exitRefused, "/nonexistent/token"},
		{"inspect garbage", nil, []string{"token", "inspect", "garbage"}, exitRefused, "malformed token"},
		{"inspect JWE", nil, []string{"token", "inspect", jwe}, exitRefused, "JWE"},
		{"inspect claims not JSON", nil, []string{"token", "inspect", "e30.bm90IGpzb24.c2ln"}, exitRefused, "claims is not a JSON object"},
		{"inspect without token", nil, []string{"token", "inspect"}, exitUsage, "one token"},
		{"session show without redis", []string{"TOLLGATE_REDIS_URL="}, []string{"session", "show", "abc"}, exitUsage, "give --redis-url: the address `tollgate serve` printed at start-up"},
		{"session show unknown id", nil, []string{"session", "show", "nosuchsession", "--redis-url", redisURL}, exitRefused, "no session nosuchsession"},
		{"session revoke unknown id", nil, []string{"session", "revoke", "nosuchsession", "--redis-url", redisURL}, exitRefused, "no session nosuchsession"},
		{"session list bad status", nil, []string{"session", "list", "--status", "zombie", "--redis-url", redisURL}, exitUsage, "--status"},
		{"session list bad limit", nil, []string{"session", "list", "--limit", "0", "--redis-url", redisURL}, exitUsage, "--limit"},
		{"bad env twin", []string{"TOLLGATE_SESSION_LIST_LIMIT=many"}, []string{"session", "list", "--redis-url", redisURL}, exitUsage, "TOLLGATE_SESSION_LIST_LIMIT"},
		{"redis unreachable", nil, []string{"session", "list", "--redis-url", "redis://127.0.0.1:1"}, exitRefused, "unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, append([]string{"TOLLGATE_ISSUER=", "TOLLGATE_REDIS_URL="}, tc.env...), tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("a failing command wrote to stdout: %q", stdout)
			}
		})
	}
}

func TestEmptySessionListIsAnEmptyArray(t *testing.T) {
	out, _, code := runBin(t, nil, "session", "list", "--json", "--redis-url", testkit.RedisURL(t))
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("exit %d, stdout %q; want [] ", code, out)
	}
}

func TestSubjectTokenTypeGuess(t *testing.T) {
	tests := []struct {
		name, flag, token, want string
	}{
		{"task token is access_token", "", fakeJWT(`{"typ":"at+jwt"}`, `{}`), "urn:ietf:params:oauth:token-type:access_token"},
		{"typ is case-insensitive", "", fakeJWT(`{"typ":"application/AT+JWT"}`, `{}`), "urn:ietf:params:oauth:token-type:access_token"},
		{"user token is id_token", "", fakeJWT(`{"typ":"JWT"}`, `{}`), "urn:ietf:params:oauth:token-type:id_token"},
		{"opaque token is id_token", "", "opaque", "urn:ietf:params:oauth:token-type:id_token"},
		{"flag wins over typ", "jwt", fakeJWT(`{"typ":"at+jwt"}`, `{}`), "urn:ietf:params:oauth:token-type:jwt"},
		{"full URN accepted", "urn:ietf:params:oauth:token-type:access_token", "x", "urn:ietf:params:oauth:token-type:access_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := subjectTokenType(tc.flag, tc.token)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestInspectDrawsTheChain(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 50, 2, 0, time.UTC)
	tok := fakeJWT(`{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}`, `{
		"iss":"http://127.0.0.1:7420","sub":"user:alice@example.com","aud":"http://127.0.0.1:7420/mcp",
		"exp":1795701600,"iat":1795701000,"jti":"j1","scope":"dns:read dns:write",
		"client_id":"spiffe://tollgate.sandbox/agent/deployer","sid":"s2","parent_sid":"s1",
		"act":{"sub":"spiffe://tollgate.sandbox/agent/deployer","act":{"sub":"spiffe://tollgate.sandbox/agent/planner"}},
		"note":"line\u001b[2Jbreak"}`)
	d, err := decodeJWT(tok)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.print(&b, now); err != nil {
		t.Fatal(err)
	}
	want := `token      at+jwt, EdDSA, kid k1
issuer     http://127.0.0.1:7420
audience   http://127.0.0.1:7420/mcp
principal  user:alice@example.com
session    s2 (parent s1)
scope      dns:read dns:write
issued     2026-11-26T13:50:00Z (2s ago)
expires    2026-11-26T14:00:00Z (in 9m58s)
token id   j1
note       "line\x1b[2Jbreak"
chain
  user:alice@example.com
  └─ spiffe://tollgate.sandbox/agent/planner
     └─ spiffe://tollgate.sandbox/agent/deployer   (client_id, acting now)
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestDecodeJWTRefusesMalformedTokens(t *testing.T) {
	deep := `{"sub":"x"}`
	for range 40 {
		deep = `{"sub":"x","act":` + deep + `}`
	}
	tests := []struct{ name, token string }{
		{"one part", "garbage"},
		{"JWE", "a.b.c.d.e"},
		{"header not base64url", "!!.e30.c2ln"},
		{"header an array", fakeJWT(`[1]`, `{}`)},
		{"claims a string", fakeJWT(`{}`, `"sub"`)},
		{"act not an object", fakeJWT(`{}`, `{"act":"agent"}`)},
		{"act forged 41 deep", fakeJWT(`{}`, `{"sub":"u","act":`+deep+`}`)},
		{"oversized", fakeJWT(`{}`, `{"pad":"`+strings.Repeat("a", maxValue)+`"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeJWT(tc.token); err == nil || !strings.HasPrefix(err.Error(), "malformed token: ") {
				t.Fatalf("decodeJWT: %v, want a malformed token error", err)
			}
		})
	}
}

func FuzzDecodeJWT(f *testing.F) {
	f.Add(fakeJWT(`{"typ":"at+jwt"}`, `{"sub":"user:a","act":{"sub":"b","act":{"sub":"c"}}}`))
	f.Add("a.b.c")
	f.Add("e30.e30.")
	f.Add(fakeJWT(`{}`, `{"act":"x"}`))
	f.Fuzz(func(t *testing.T, tok string) {
		d, err := decodeJWT(tok)
		if err != nil {
			return
		}
		chain := d.chain()
		if chain[0] != d.claims.Subject || len(chain) != 1+d.claims.Act.Depth() {
			t.Fatalf("chain %q for sub %q and act depth %d", chain, d.claims.Subject, d.claims.Act.Depth())
		}
		var b bytes.Buffer
		if err := d.print(&b, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

// fakeJWT builds an unsigned compact JWS for decoding tests.
func fakeJWT(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + ".c2ln"
}

// runStdin runs the binary with stdin; it fails the test unless it exits 0.
func runStdin(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("tollgate %s: %v, stderr:\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String()
}

func sessionIDs(list []sessions.Session) []string {
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return sorted(ids...)
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
