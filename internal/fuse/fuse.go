// Package fuse runs the Lua scripts of several stores as one script, in one
// Redis round trip, atomically.
//
// Each store keeps its own script and its own keys: a Step is a store's
// script body (which reads KEYS and ARGV, as a standalone script does),
// the keys and arguments that store built for it, and the condition under
// which the fused script goes on to the next step. Run wraps every body in
// a function whose parameters are named KEYS and ARGV, so a body runs
// unchanged, slices the concatenated keys and arguments back into each
// step's own, and stops at the first step whose reply says stop. The store
// that built a step parses its reply.
//
// All keys of one fused script must hash to one Redis Cluster slot; the
// guard's phases use only keys under the principal's hash tag.
package fuse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Step is one store's script inside a fused script.
type Step struct {
	// Name identifies the step in errors and tests ([a-z_]).
	Name string
	// Lib is the helper code Body needs (local functions); it is placed
	// in the step's own block, so two steps' helpers never meet.
	Lib string
	// Body is the script: it reads KEYS and ARGV and returns its reply.
	Body string
	// Continue is a Lua expression over the reply r that is true when the
	// fused script should run the next step; "true" always goes on.
	Continue string
	Keys     []string
	Args     []any
}

// Result is what Run answers.
type Result struct {
	// Replies holds the reply of each step that ran, in order.
	Replies []any
	// Stopped is the index of the step whose reply stopped the script,
	// or -1 when every step ran and said go on.
	Stopped int
}

// Run runs steps as one script. The script's text depends only on the
// steps' names, libraries, bodies and conditions, so a fixed sequence is
// compiled once per Redis node (EVALSHA after the first call).
func Run(ctx context.Context, rdb redis.Scripter, steps ...Step) (Result, error) {
	if len(steps) == 0 {
		return Result{Stopped: -1}, nil
	}
	script := compile(steps, ctx.Value(strictKey{}) != nil)
	var keys []string
	args := make([]any, 0, 1+2*len(steps))
	args = append(args, len(steps))
	for _, s := range steps {
		args = append(args, len(s.Keys), len(s.Args))
	}
	for _, s := range steps {
		keys = append(keys, s.Keys...)
		args = append(args, s.Args...)
	}
	var raw any
	var err error
	if w, acks := waitOf(ctx); w.Replicas > 0 {
		var n int
		raw, n, err = runWaited(ctx, rdb, script, w, keys, args)
		if err == nil {
			acks.Asked, acks.Got = w.Replicas, n
		}
	} else {
		raw, err = script.s.Run(ctx, rdb, keys, args...).Result()
	}
	if err != nil {
		return Result{}, err
	}
	reply, ok := raw.([]any)
	if !ok {
		return Result{}, fmt.Errorf("fuse: malformed reply %v", raw)
	}
	if len(reply) < 1 {
		return Result{}, fmt.Errorf("fuse: empty reply")
	}
	stopped, ok := reply[0].(int64)
	if !ok || stopped < 0 || int(stopped) > len(steps) || len(reply)-1 > len(steps) {
		return Result{}, fmt.Errorf("fuse: malformed reply %v", reply)
	}
	return Result{Replies: reply[1:], Stopped: int(stopped) - 1}, nil
}

var compiled sync.Map // script text → *script

// script is a compiled fused script: its text (for EVAL), its SHA (for
// EVALSHA) and whether this process has sent its text once (after which
// a waited run sends EVALSHA first).
type script struct {
	src    string
	s      *redis.Script
	loaded atomic.Bool
}

type strictKey struct{}

// Strict marks ctx so that Run's scripts start with the "#!lua" shebang:
// Redis 7 then refuses a script that touches an undeclared key of another
// Cluster slot, which a plain script may do unnoticed on a node serving
// both slots. Cluster tests use it; production scripts carry no shebang
// because miniredis (the sandbox's embedded Redis) does not parse it.
func Strict(ctx context.Context) context.Context { return context.WithValue(ctx, strictKey{}, true) }

// compile builds (once) the fused script of steps.
func compile(steps []Step, strict bool) *script {
	src := Source(steps)
	if strict {
		src = "#!lua\n" + src
	}
	if s, ok := compiled.Load(src); ok {
		return s.(*script)
	}
	s, _ := compiled.LoadOrStore(src, &script{src: src, s: redis.NewScript(src)})
	return s.(*script)
}

// Source is the fused script of steps (exported for tests and for reading).
//
// ARGV[1] is the number of steps n; ARGV[2..2n+1] each step's key and
// argument counts; then every step's arguments in order. KEYS holds every
// step's keys in order. The reply is {stopped, reply1, reply2, …}: stopped
// is 0 when all ran, else the 1-based index of the step that said stop.
func Source(steps []Step) string {
	var b strings.Builder
	b.WriteString("local steps, go_on = {}, {}\n")
	for i, s := range steps {
		n := strconv.Itoa(i + 1)
		fmt.Fprintf(&b, "do -- step %s: %s\n%s\nsteps[%s] = function(KEYS, ARGV)\n%s\nend\ngo_on[%s] = function(r) return %s end\nend\n",
			n, s.Name, s.Lib, n, s.Body, n, s.Continue)
	}
	b.WriteString(`local n = tonumber(ARGV[1])
local ki, ai = 0, 1 + 2 * n
local out = {0}
for i = 1, n do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local k, a = {}, {}
  for j = 1, nk do k[j] = KEYS[ki + j] end
  for j = 1, na do a[j] = ARGV[ai + j] end
  ki, ai = ki + nk, ai + na
  local r = steps[i](k, a)
  out[#out + 1] = r
  if not go_on[i](r) then
    out[1] = i
    return out
  end
end
return out
`)
	return b.String()
}
