package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go/types"
)

// maxMemo bounds the decisions an Engine remembers; past it the memo
// starts again empty.
const maxMemo = 4096

// decisions remembers an Engine's decisions by their whole request.
type decisions struct {
	max int
	mu  sync.Mutex
	m   map[string]Decision
}

func newDecisions(max int) *decisions { return &decisions{max: max, m: map[string]Decision{}} }

// remember returns the decision for this request, deciding it once. The
// key is everything the decision reads: the agent and subject with every
// attribute, the action, the resource and the context. A request that
// cannot be keyed is decided afresh.
func (e *Engine) remember(agent Agent, action types.String, res string, subject Subject, ctx types.RecordMap, decide func() Decision) Decision {
	if e == nil || e.memo == nil {
		return decide()
	}
	return e.rememberKey(memoKey(agent, subject)+memoRequest(action, res, ctx), decide)
}

// rememberKey is remember with the key already made.
func (e *Engine) rememberKey(key string, decide func() Decision) Decision {
	if e == nil || e.memo == nil {
		return decide()
	}
	d := e.memo
	d.mu.Lock()
	got, ok := d.m[key]
	d.mu.Unlock()
	if ok {
		return got.clone()
	}
	got = decide()
	d.mu.Lock()
	if len(d.m) >= d.max {
		d.m = map[string]Decision{}
	}
	d.m[key] = got.clone()
	d.mu.Unlock()
	return got
}

// memoKey writes every input of a decision, each length-prefixed so that
// no two requests share a key.
// memoKey is the part of a decision's key that names who asks for whom;
// memoRequest the part that names what is asked.
func memoKey(agent Agent, subject Subject) string {
	var b strings.Builder
	attrs := func(m map[string]string) {
		lp(&b, strconv.Itoa(len(m)))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			lp(&b, k)
			lp(&b, m[k])
		}
	}
	lp(&b, agent.ID)
	lp(&b, string(agent.Kind))
	attrs(agent.Attrs)
	lp(&b, subject.ID)
	lp(&b, string(subject.Kind))
	attrs(subject.Attrs)
	return b.String()
}

func memoRequest(action types.String, res string, ctx types.RecordMap) string {
	var b strings.Builder
	lp(&b, string(action))
	lp(&b, res)
	lp(&b, strconv.Itoa(len(ctx)))
	for _, k := range slices.Sorted(maps.Keys(ctx)) {
		lp(&b, string(k))
		lp(&b, fmt.Sprintf("%T %v", ctx[k], ctx[k]))
	}
	return b.String()
}

// lp writes s length-prefixed.
func lp(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

func (d Decision) clone() Decision {
	d.PolicyIDs, d.Errors = slices.Clone(d.PolicyIDs), slices.Clone(d.Errors)
	return d
}
