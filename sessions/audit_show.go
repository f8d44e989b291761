package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// auditTime is how RenderTree prints an entry's time: UTC, milliseconds.
const auditTime = "2006-01-02T15:04:05.000Z07:00"

// RenderTree draws a delegation tree for `tollgate audit show`: the
// principal at the root, then each session with its acting agent and
// status, nested parent to child, and under each session what its agent
// did (time, event, tool, decision and code, amount), oldest first.
// entries is keyed by session id, as ForSessions returns it.
//
//	principal user:alice@example.com
//	└─ session s1 · agent spiffe://example.org/agent/planner · active
//	   │  2030-01-02T03:04:05.000Z  exchange   -           allow
//	   └─ session s2 · agent spiffe://example.org/agent/registrar · revoked
//	         2030-01-02T03:04:06.000Z  hold  domain_register  ok  12.00 USD
//
// Text from Redis is printed with control characters replaced, so a
// crafted value cannot drive the reader's terminal.
func RenderTree(w io.Writer, tree *Node, entries map[string][]Entry) error {
	return renderTree(w, tree, entries, "")
}

// renderTree is RenderTree marking the session mark.
func renderTree(w io.Writer, tree *Node, entries map[string][]Entry, mark string) error {
	if tree == nil {
		return errors.New("sessions: RenderTree needs a tree")
	}
	r := &treeRenderer{w: w, entries: entries, mark: mark}
	r.line("principal " + clean(tree.Principal))
	r.node(tree, "", true, tree.Principal)
	return r.err
}

type treeRenderer struct {
	w       io.Writer
	entries map[string][]Entry
	mark    string
	err     error
}

func (r *treeRenderer) line(s string) {
	if r.err == nil {
		_, r.err = io.WriteString(r.w, strings.TrimRight(s, " ")+"\n")
	}
}

// node draws n under prefix; last tells whether it is its parent's last
// child; principal is its parent's principal.
func (r *treeRenderer) node(n *Node, prefix string, last bool, principal string) {
	branch, inner := "├─ ", "│  "
	if last {
		branch, inner = "└─ ", "   "
	}
	r.line(prefix + branch + r.header(n, principal))
	body := prefix + inner
	guide := "   "
	if len(n.Children) > 0 {
		guide = "│  "
	}
	// Background-batched tool_call entries join the chain a few ms after
	// their call; a reader wants time order.
	es := slices.Clone(r.entries[n.ID])
	slices.SortStableFunc(es, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	r.actions(body+guide, es)
	for i, c := range n.Children {
		r.node(c, body, i == len(n.Children)-1, n.Principal)
	}
}

// header is "session ID · [principal P · ]agent A · status[ · "task"]".
func (r *treeRenderer) header(n *Node, parentPrincipal string) string {
	parts := []string{"session " + clean(n.ID)}
	if n.Principal != parentPrincipal {
		parts = append(parts, "principal "+clean(n.Principal))
	}
	parts = append(parts, "agent "+clean(actingAgent(n.Session)), clean(string(n.Status)))
	if d := n.Description; d != "" {
		parts = append(parts, `"`+clip(clean(d), 60)+`"`)
	}
	h := strings.Join(parts, " · ")
	if r.mark != "" && n.ID == r.mark {
		h += "  ◀"
	}
	return h
}

// actions draws a session's entries as aligned columns.
func (r *treeRenderer) actions(prefix string, es []Entry) {
	if len(es) == 0 {
		r.line(prefix + "(no actions recorded)")
		return
	}
	rows := make([][6]string, len(es))
	var width [6]int
	for i, e := range es {
		tool := e.Tool
		if tool == "" {
			tool = "-"
		}
		outcome := strings.TrimSpace(e.Decision + " " + e.Code)
		var amt string
		if e.Amount != nil {
			amt = e.Amount.String()
		}
		rows[i] = [6]string{e.Time.UTC().Format(auditTime), clean(e.Event), clean(tool), clean(outcome), clean(amt), clean(entryTarget(e))}
		for j, c := range rows[i] {
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString(prefix)
		for j, c := range row {
			if j > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[j]-utf8.RuneCountInString(c)))
		}
		r.line(b.String())
	}
}

// actingAgent is the agent that acts in a session: the head of its actor
// chain, else its OAuth client.
func actingAgent(s Session) string {
	switch {
	case len(s.Actors) > 0:
		return s.Actors[0]
	case s.ClientID != "":
		return s.ClientID
	default:
		return "(unknown)"
	}
}

// clean replaces every control or otherwise non-graphic character (line
// breaks and terminal escapes included) with U+FFFD.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsGraphic(r) {
			return r
		}
		return utf8.RuneError
	}, s)
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// ShowSession writes `tollgate audit show --session sid`: it looks the
// session up by id, climbs its Parent links to the top of its delegation
// tree (as far as parents are still kept), and renders that whole tree
// with every session's entries, marking sid with "◀". It returns
// fault.NotFound when no session sid is kept any more.
func ShowSession(ctx context.Context, store *Store, audit *Audit, sid string, w io.Writer) error {
	if store == nil || audit == nil {
		return errors.New("sessions: ShowSession needs a Store and an Audit")
	}
	top, err := store.Lookup(ctx, sid)
	if err != nil {
		return err
	}
	for range maxTreeDepth {
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
			return err
		}
		top = parent
	}
	tree, err := store.Tree(ctx, top.Principal, top.ID)
	if err != nil {
		return err
	}
	ids := map[string]string{}
	var walk func(*Node)
	walk = func(n *Node) {
		ids[n.ID] = n.Principal
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(tree)
	entries, err := audit.ForSessions(ctx, ids)
	if err != nil {
		return err
	}
	if err := renderTree(w, tree, entries, sid); err != nil {
		return fmt.Errorf("sessions: audit show: %w", err)
	}
	return nil
}

// entryTarget names what an entry acted on: the domain or Worker, and the
// Cloudflare account, from its details.
func entryTarget(e Entry) string {
	var parts []string
	if t := e.Detail["target"]; t != "" {
		parts = append(parts, t)
	} else if d := e.Detail["domain"]; d != "" {
		parts = append(parts, d)
	}
	if a := e.Detail["account"]; a != "" {
		parts = append(parts, "account "+a)
	}
	return clip(strings.Join(parts, " · "), 80)
}
