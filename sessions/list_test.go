package sessions

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

func TestList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a1 := f.create(alice, "")
	f.clock.Advance(time.Second)
	a2 := f.create(alice, a1.ID)
	f.clock.Advance(time.Second)
	b1 := f.create(bob, "")
	f.clock.Advance(time.Minute)
	a3 := f.create(alice, "")
	long, err := f.store.Create(ctx, Session{Principal: alice, Expires: f.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f.revoke(a2)
	f.clock.Advance(9*time.Minute + time.Second) // a1 and b1 expire; a3 and long do not

	tests := []struct {
		name   string
		filter ListFilter
		want   []Session // latest expiry first
	}{
		{"one principal", ListFilter{Principal: alice}, []Session{long, a3, a2, a1}},
		{"another principal sees only its own", ListFilter{Principal: bob}, []Session{b1}},
		{"every principal", ListFilter{}, []Session{long, a3, b1, a2, a1}},
		{"active only", ListFilter{Principal: alice, Status: StatusActive}, []Session{long, a3}},
		{"expired is derived", ListFilter{Status: StatusExpired}, []Session{b1, a1}},
		{"revoked", ListFilter{Status: StatusRevoked}, []Session{a2}},
		{"limit", ListFilter{Principal: alice, Limit: 2}, []Session{long, a3}},
		{"principal that does not exist", ListFilter{Principal: "user:nobody"}, nil},
		{"brace principal sees nothing of alice", ListFilter{Principal: "user:alice@example.com}"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.store.List(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := idsInOrder(got), idsInOrder(tt.want); !slices.Equal(g, w) {
				t.Fatalf("got %v, want %v", g, w)
			}
		})
	}

	// a1, a2 and b1 fall out once their retention ends.
	f.clock.Advance(DefaultRetention)
	got, err := f.store.List(ctx, ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := idsInOrder(got), idsInOrder([]Session{long, a3}); !slices.Equal(g, w) {
		t.Fatalf("after retention: got %v, want %v", g, w)
	}

	for _, bad := range []ListFilter{{Status: "pending"}, {Limit: -1}} {
		_, err := f.store.List(ctx, bad)
		wantCode(t, err, fault.InvalidArgument)
	}
}

func idsInOrder(ss []Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestListPagesThroughManySessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 600
	for i := range n {
		s := f.create(alice, "")
		if i%3 == 0 {
			f.revoke(s)
		}
	}
	got, err := f.store.List(ctx, ListFilter{Principal: alice, Status: StatusActive, Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-n/3 {
		t.Fatalf("listed %d active sessions, want %d", len(got), n-n/3)
	}
	all, err := f.store.List(ctx, ListFilter{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("listed %d sessions with a limit above the maximum, want %d", len(all), n)
	}
}

func TestChildrenAndTree(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tr := f.tree()

	kids, err := f.store.Children(ctx, alice, tr.a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := idsInOrder(kids), idsInOrder([]Session{tr.a1, tr.a2, tr.x}); !slices.Equal(g, w) {
		t.Fatalf("children %v, want %v (oldest first)", g, w)
	}
	_, err = f.store.Children(ctx, bob, tr.a.ID)
	wantCode(t, err, fault.NotFound)
	_, err = f.store.Tree(ctx, bob, tr.root.ID)
	wantCode(t, err, fault.NotFound)

	root, err := f.store.Tree(ctx, alice, tr.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := shape(root)
	want := "root(a(a1 a2 x(x1)) b(b1))"
	names := map[string]string{tr.root.ID: "root", tr.a.ID: "a", tr.b.ID: "b", tr.a1.ID: "a1",
		tr.a2.ID: "a2", tr.b1.ID: "b1", tr.x.ID: "x", tr.x1.ID: "x1"}
	if named := rename(got, names); named != want {
		t.Fatalf("tree %s, want %s", named, want)
	}
	// The cross-principal nodes carry their own principal.
	x := root.Children[0].Children[2]
	if x.Principal != bob || x.Children[0].Principal != alice || x.Children[0].ParentPrincipal != bob {
		t.Fatalf("cross-principal nodes: %+v", x)
	}
	if _, err := json.Marshal(root); err != nil {
		t.Fatal(err)
	}
}

func shape(n *Node) string {
	s := n.ID
	if len(n.Children) > 0 {
		s += "("
		for i, c := range n.Children {
			if i > 0 {
				s += " "
			}
			s += shape(c)
		}
		s += ")"
	}
	return s
}

func rename(s string, names map[string]string) string {
	for id, name := range names {
		s = strings.ReplaceAll(s, id, name)
	}
	return s
}

// Count is every session on record, every principal's, revoked and
// expired ones within retention included; a store that cannot be reached
// refuses rather than answer zero.
func TestCount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if n, err := f.store.Count(ctx); err != nil || n != 0 {
		t.Fatalf("empty store: %d, %v", n, err)
	}
	a := f.create(alice, "")
	f.create(alice, a.ID)
	f.revoke(f.create(bob, ""))
	f.clock.Advance(time.Hour) // expired, still kept
	if n, err := f.store.Count(ctx); err != nil || n != 3 {
		t.Fatalf("count %d, %v; want 3", n, err)
	}
	_ = f.rdb.(interface{ Close() error }).Close()
	_, err := f.store.Count(ctx)
	wantCode(t, err, fault.Unavailable)
}
