package policy

import (
	"encoding/json"
	"slices"
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
	k, err := json.Marshal(struct {
		Agent   Agent
		Action  types.String
		Res     string
		Subject Subject
		Ctx     types.RecordMap
	}{agent, action, res, subject, ctx})
	if err != nil {
		return decide()
	}
	key := string(k)
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

func (d Decision) clone() Decision {
	d.PolicyIDs, d.Errors = slices.Clone(d.PolicyIDs), slices.Clone(d.Errors)
	return d
}
