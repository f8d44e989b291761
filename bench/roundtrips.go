package bench

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/rediskey"
)

// tripCounter is a go-redis hook on the App's client: every Process is one
// round trip, every pipeline one round trip carrying several commands.
// It counts only while on.
type tripCounter struct {
	on    atomic.Bool
	mu    sync.Mutex
	trips int
	kinds map[string]int // what each round trip was, e.g. "EVALSHA session"
}

var _ redis.Hook = (*tripCounter)(nil)

func (h *tripCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() {
			h.note(label(cmd))
		}
		return next(ctx, cmd)
	}
}

func (h *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() {
			ls := make([]string, len(cmds))
			for i, c := range cmds {
				ls[i] = label(c)
			}
			h.note("pipeline[" + strings.Join(ls, " + ") + "]")
		}
		return next(ctx, cmds)
	}
}

func (h *tripCounter) note(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	h.kinds[kind]++
}

// start resets the counts and starts counting.
func (h *tripCounter) start() {
	h.mu.Lock()
	h.trips, h.kinds = 0, map[string]int{}
	h.mu.Unlock()
	h.on.Store(true)
}

// stop stops counting and returns the round trips and their kinds.
func (h *tripCounter) stop() (int, map[string]int) {
	h.on.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trips, maps.Clone(h.kinds)
}

// label names a command by what it touches: "EVALSHA session".
func label(c redis.Cmder) string {
	args := c.Args()
	name := strings.ToUpper(c.Name())
	key := ""
	switch {
	case (name == "EVALSHA" || name == "EVAL" || name == "EVALSHA_RO" || name == "EVAL_RO") && len(args) > 3:
		key = fmt.Sprint(args[3])
	case len(args) > 1:
		key = fmt.Sprint(args[1])
	}
	if key == "" {
		return name
	}
	return name + " " + owner(key)
}

// owner names the component a tollgate key belongs to: the store that owns
// its family in the key registry (rediskey.Families). The stores of the hot
// path have short names; others are named by the family.
func owner(key string) string {
	f, ok := rediskey.Lookup(key)
	if !ok {
		return "unregistered"
	}
	switch path.Base(f.Owner) + "." + f.Store {
	case "sessions.Store":
		return "session"
	case "sessions.Audit":
		return "audit-trail"
	case "idempotency.Store":
		return "idempotency"
	case "loopguard.Guard":
		return "loop-guard"
	case "spend.Ledger":
		return "spend-ledger"
	case "auth.KeyRing":
		return "signing-keys"
	}
	return "other(" + f.Name + ")"
}

// tripReport is the round trips and server-side commands of a few calls.
type tripReport struct {
	calls    int
	trips    int
	kinds    map[string]int
	commands map[string]int64 // INFO commandstats delta, without INFO itself
}

func (r tripReport) perCall() float64 { return float64(r.trips) / float64(r.calls) }

func (r tripReport) commandsPerCall() float64 {
	var n int64
	for _, v := range r.commands {
		n += v
	}
	return float64(n) / float64(r.calls)
}

// describe lists the round trips per call by kind, most frequent first.
func (r tripReport) describe() string {
	return perCallList(r.kinds, r.calls)
}

// describeCommands lists the server-side commands per call.
func (r tripReport) describeCommands() string {
	m := map[string]int{}
	for k, v := range r.commands {
		m[strings.ToUpper(k)] = int(v)
	}
	return perCallList(m, r.calls)
}

func perCallList(m map[string]int, calls int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%s", k, trimFloat(float64(m[k])/float64(calls))))
	}
	return strings.Join(parts, ", ")
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// countTrips runs calls sequentially while counting the App client's round
// trips (hook) and the server's executed commands (INFO commandstats on the
// bench's own redis-server, read through an uncounted admin client).
func countTrips(ctx context.Context, h *tripCounter, admin redis.UniversalClient, calls int, op func(i int) error) (tripReport, error) {
	before, err := commandStats(ctx, admin)
	if err != nil {
		return tripReport{}, err
	}
	h.start()
	for i := range calls {
		if err := op(i); err != nil {
			h.stop()
			return tripReport{}, err
		}
	}
	trips, kinds := h.stop()
	after, err := commandStats(ctx, admin)
	if err != nil {
		return tripReport{}, err
	}
	delta := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "info" {
			delta[k] = d
		}
	}
	return tripReport{calls: calls, trips: trips, kinds: kinds, commands: delta}, nil
}
