package main

import (
	"context"
	"errors"
	"slices"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

// auditNode is one session of audit show --json: the session record, what
// its agent did (oldest first), and its sub-agents' sessions.
type auditNode struct {
	sessions.Session
	Entries  []sessions.Entry `json:"entries"`
	Children []*auditNode     `json:"children,omitempty"`
}

// auditTree is audit show --json: the same tree audit show draws.
type auditTree struct {
	Session string     `json:"session"` // the session asked for
	Tree    *auditNode `json:"tree"`    // from the top of its delegation tree
}

// maxAuditDepth bounds the climb to the top of a delegation tree (the
// exchange allows 5 actors; a corrupt parent loop must still end).
const maxAuditDepth = 32

// showTree reads what audit show draws, as data: it climbs sid's parents to
// the top of its delegation tree (as far as they are kept) and returns that
// tree with every session's entries.
func showTree(ctx context.Context, store *sessions.Store, trail *sessions.Audit, sid string) (auditTree, error) {
	top, err := store.Lookup(ctx, sid)
	if err != nil {
		return auditTree{}, err
	}
	for range maxAuditDepth {
		if top.Parent == "" {
			break
		}
		pp := top.ParentPrincipal
		if pp == "" {
			pp = top.Principal
		}
		parent, err := store.Get(ctx, pp, top.Parent)
		if errors.Is(err, fault.New(fault.NotFound, "")) {
			break // purged after its retention: the tree starts here
		}
		if err != nil {
			return auditTree{}, err
		}
		top = parent
	}
	tree, err := store.Tree(ctx, top.Principal, top.ID)
	if err != nil {
		return auditTree{}, err
	}
	ids := map[string]string{} // session id → its principal, whose chain holds its entries
	var walk func(*sessions.Node)
	walk = func(n *sessions.Node) {
		ids[n.ID] = n.Principal
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(tree)
	entries, err := trail.ForSessions(ctx, ids)
	if err != nil {
		return auditTree{}, err
	}
	var build func(*sessions.Node) *auditNode
	build = func(n *sessions.Node) *auditNode {
		es := slices.Clone(entries[n.ID])
		if es == nil {
			es = []sessions.Entry{}
		}
		slices.SortStableFunc(es, func(a, b sessions.Entry) int { return a.Time.Compare(b.Time) })
		out := &auditNode{Session: n.Session, Entries: es}
		for _, c := range n.Children {
			out.Children = append(out.Children, build(c))
		}
		return out
	}
	return auditTree{Session: sid, Tree: build(tree)}, nil
}
