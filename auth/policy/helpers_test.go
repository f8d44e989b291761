package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

const testSum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var (
	devAgent   = Agent{ID: "spiffe://tollgate.sandbox/agent/deployer", Kind: KindDev}
	devSub     = Agent{ID: "spiffe://tollgate.sandbox/agent/researcher", Kind: KindDev}
	unixAgent  = Agent{ID: "unix:uid=1000:exe=/usr/bin/node:sha256=" + testSum, Kind: KindUnix}
	foreignJWT = Agent{ID: "spiffe://evil.example/agent/deployer", Kind: KindJWT}
	blocked    = Agent{ID: "spiffe://tollgate.sandbox/agent/blocked-bot", Kind: KindDev}
	alice      = Subject{ID: "user:alice@example.com", Kind: KindUser, Attrs: map[string]string{"email": "alice@example.com", "email_verified": "true"}}
	pairA      = Agent{ID: "spiffe://example.org/agent/a", Kind: KindJWT}
	pairB      = Agent{ID: "spiffe://example.org/agent/b", Kind: KindJWT}
	pairC      = Agent{ID: "spiffe://example.org/agent/c", Kind: KindJWT}
	// allowAllSrc allows every action but impersonate, which Parse only
	// accepts from a permit that names the pair.
	allowAllSrc = `@id("allow-all") permit (principal, action in [Tollgate::Action::"act_for",
		Tollgate::Action::"use_scope", Tollgate::Action::"spend"], resource);` + "\n"
)

func sandbox(t testing.TB) *Engine {
	t.Helper()
	e, err := Sandbox()
	if err != nil {
		t.Fatalf("Sandbox: %v", err)
	}
	return e
}

func mustParse(t testing.TB, src string) *Engine {
	t.Helper()
	e, err := Parse("test.cedar", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return e
}

// want is the expected shape of a Decision: allow, which policies decided,
// and whether it was a fail-closed deny.
type want struct {
	allow  bool
	ids    []string
	failed bool
}

func check(t *testing.T, got Decision, w want) {
	t.Helper()
	if got.Allow != w.allow {
		t.Errorf("Allow = %v, want %v (decision %+v)", got.Allow, w.allow, got)
	}
	if !slices.Equal(got.PolicyIDs, w.ids) {
		t.Errorf("PolicyIDs = %q, want %q (decision %+v)", got.PolicyIDs, w.ids, got)
	}
	if failed := len(got.Errors) > 0; failed != w.failed {
		t.Errorf("Errors = %q, want errors: %v", got.Errors, w.failed)
	}
	if got.Allow && len(got.Errors) > 0 {
		t.Errorf("a decision with errors allowed: %+v", got)
	}
	if err := got.Err(); (err == nil) != got.Allow {
		t.Errorf("Err() = %v for Allow = %v", err, got.Allow)
	} else if err != nil && fault.CodeOf(err) != PolicyDenied {
		t.Errorf("Err() code = %q, want %q", fault.CodeOf(err), PolicyDenied)
	}
}

func wantCode(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %q", code)
	}
	if got := fault.CodeOf(err); got != code {
		t.Fatalf("code = %q, want %q (err %v)", got, code, err)
	}
}

func publicHas(t *testing.T, err error, parts ...string) {
	t.Helper()
	msg := fault.PublicOf(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("public message %q lacks %q", msg, p)
		}
	}
}
