package sessions

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (rerun with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRenderTreeGolden(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const (
		planner   = "spiffe://example.org/agent/planner"
		registrar = "spiffe://example.org/agent/registrar"
		dnsbot    = "spiffe://example.org/agent/dns"
	)
	price := money.USD(1044)
	tree := &Node{
		Session: Session{ID: "s-root", Principal: alice, Actors: []string{planner}, Status: StatusActive,
			Description: "Register example.dev and point it at the staging app, then report back to the team"},
		Children: []*Node{
			{Session: Session{ID: "s-reg", Principal: alice, Actors: []string{registrar, planner}, Status: StatusRevoked},
				Children: []*Node{
					{Session: Session{ID: "s-dns", Principal: alice, ClientID: dnsbot, Status: StatusExpired}},
				}},
			{Session: Session{ID: "s-ops", Principal: "svc:ops\x1b[31m", Actors: []string{dnsbot}, Status: StatusActive}},
		},
	}
	entries := map[string][]Entry{
		"s-root": {
			{Time: at(0), Event: "exchange", Decision: DecisionAllow},
			{Time: at(12), Event: "tool_call", Tool: "domain_check", Decision: DecisionOK},
		},
		"s-reg": {
			{Time: at(20), Event: "exchange", Decision: DecisionAllow},
			{Time: at(21), Event: "hold", Tool: "domain_register", Decision: DecisionOK, Amount: &price},
			{Time: at(900), Event: "commit", Tool: "domain_register", Decision: DecisionOK, Amount: &price},
			{Time: at(950), Event: "tool_call", Tool: "domain_register", Decision: DecisionDeny, Code: "cap_exceeded"},
			{Time: at(1000), Event: "revoke", Decision: DecisionOK, Code: "loop_detected"},
		},
		"s-ops": {
			{Time: at(30), Event: "tool_call", Tool: "dns\x1b[2Jrecord_set", Decision: DecisionError, Code: "unavailable"},
		},
		"s-unrelated": {{Time: at(1), Event: "tool_call", Tool: "never_shown"}},
	}
	var buf bytes.Buffer
	if err := RenderTree(&buf, tree, entries); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Fatal("a terminal escape reached the output")
	}
	if strings.Contains(buf.String(), "never_shown") {
		t.Fatal("an entry of a session outside the tree was shown")
	}
	golden(t, "audit_tree.golden", buf.Bytes())
}

func TestRenderTreeNil(t *testing.T) {
	if err := RenderTree(&bytes.Buffer{}, nil, nil); err == nil {
		t.Fatal("nil tree rendered")
	}
}

// ShowSession of a grandchild shows the whole tree from the top, across
// principals, with each session's own entries.
func TestShowSession(t *testing.T) {
	f := newFixture(t)
	a := newAudit(t, f.rdb, f.clock, AuditConfig{})
	ctx := context.Background()
	root := f.create(alice, "")
	child := f.create(alice, root.ID)
	grandchild := f.create(bob, member(alice, child.ID))
	sibling := f.create(alice, root.ID)
	log := func(s Session, e Entry) {
		t.Helper()
		f.clock.Advance(time.Millisecond)
		e.Principal, e.Session, e.ParentSession = s.Principal, s.ID, s.Parent
		if _, err := a.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	price := money.USD(1200)
	log(root, Entry{Event: "exchange", Decision: DecisionAllow})
	log(child, Entry{Event: "exchange", Decision: DecisionAllow})
	log(grandchild, Entry{Event: "hold", Tool: "domain_register", Decision: DecisionOK, Amount: &price})
	log(grandchild, Entry{Event: "tool_call", Tool: "domain_register", Decision: DecisionDeny, Code: "cap_exceeded"})
	log(root, Entry{Event: "revoke", Decision: DecisionOK})

	var buf bytes.Buffer
	if err := ShowSession(ctx, f.store, a, grandchild.ID, &buf); err != nil {
		t.Fatal(err)
	}
	out := strings.NewReplacer(root.ID, "ROOT", child.ID, "CHILD", grandchild.ID, "GRANDCHILD", sibling.ID, "SIBLING").Replace(buf.String())
	golden(t, "audit_show.golden", []byte(out))

	err := ShowSession(ctx, f.store, a, "aaaaaaaaaaaaaaaaaaaaaaaaaa", &buf)
	if !errors.Is(err, fault.New(fault.NotFound, "")) {
		t.Fatalf("unknown session: %v, want not_found", err)
	}
}
