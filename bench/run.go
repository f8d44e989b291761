package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// Options size the run. The zero value of a field takes its default, sized
// so that the whole run takes about a minute on two idle cores.
type Options struct {
	Out      io.Writer // the table (stdout)
	Progress io.Writer // what is being measured now (stderr)

	Workers         int // concurrent MCP clients per tool-call configuration (8)
	InProcessCalls  int // calls per in-process configuration (20,000)
	HTTPCalls       int // calls per HTTP configuration (6,000)
	SequentialCalls int // calls per configuration made one at a time (4,000)
	Rounds          int // the configurations take turns this many times (5)
	Warmup          int // unmeasured calls per configuration first (500)

	ExchangesSequential int // timed exchanges, one at a time (500)
	ExchangesConcurrent int // timed exchanges, ExchangeWorkers at a time (3,000)
	ExchangeWorkers     int // (16)
	Sessions            int // live sessions when memory is measured (10,000)

	Holds       int // Hold+Commit pairs per configuration (6,400)
	HoldWorkers int // (64)

	TripCalls int // sequential unpaid calls whose round trips are counted (100)
	PaidCalls int // sequential paid calls whose round trips are counted (4; the sandbox cap allows 8 .com a month)

	FloorSamples int // samples of each floor component (2,000)

	CPUProfile   string // where the guarded in-process CPU profile goes ("": none)
	ProfileCalls int    // calls made while profiling (10,000)
	// ExchangeCPUProfile is where a CPU profile of the concurrent token
	// exchanges goes ("": none, the default); the profiled run is an
	// extra one, after the timed ones.
	ExchangeCPUProfile string
}

func (o *Options) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.Workers, 8)
	def(&o.InProcessCalls, 20000)
	def(&o.HTTPCalls, 6000)
	def(&o.SequentialCalls, 4000)
	def(&o.Rounds, 5)
	def(&o.Warmup, 500)
	def(&o.ExchangesSequential, 500)
	def(&o.ExchangesConcurrent, 3000)
	def(&o.ExchangeWorkers, 16)
	def(&o.Sessions, 10000)
	def(&o.Holds, 6400)
	def(&o.HoldWorkers, 64)
	def(&o.TripCalls, 100)
	def(&o.PaidCalls, 4)
	def(&o.FloorSamples, 2000)
	def(&o.ProfileCalls, 10000)
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// runner carries one run's system and results.
type runner struct {
	o     Options
	redis *testkit.RedisServer
	admin *redis.Client // uncounted: INFO, ZCARD
	sys   *system
	trips *tripCounter
	rows  []row
	calls *callSetup
	// floor is the p50 of one Redis round trip and one token verify, the
	// least a guarded call can add (set by the floor phase).
	floorRTT, floorVerify time.Duration
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "bench: "+format+"\n", args...)
}

// Run starts a redis-server, builds the App on it, measures, and prints
// the table to o.Out.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	start := time.Now()
	r := &runner{o: o, trips: &tripCounter{kinds: map[string]int{}}}
	if r.redis, err = testkit.StartRedis(); err != nil {
		return err
	}
	defer r.redis.Stop()
	r.admin = redis.NewClient(&redis.Options{Addr: r.redis.Addr})
	defer r.admin.Close()
	r.progress("redis-server %s (pid %d)", r.redis.Addr, r.redis.Pid())
	if r.sys, err = newSystem(ctx, r.redis.URL); err != nil {
		return err
	}
	defer r.sys.close()
	defer func() {
		if r.calls != nil {
			r.calls.close()
		}
	}()
	r.sys.app.Redis.Client.AddHook(r.trips)
	m := describeMachine(ctx, r.admin)
	load0 := loadAverage()

	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{fmt.Sprintf("token exchanges and %s live sessions", thousands(int64(o.Sessions))), r.exchangesAndMemory},
		{"the floor: one round trip, one verify, one check, one append", r.floor},
		{"tool calls, guarded and bare", r.toolCalls},
		{"CPU profile of the guarded in-process path", r.profile},
		{"holds", r.holds},
		{"Redis round trips per call", r.roundTrips},
	}
	for _, p := range phases {
		r.progress("%s …", p.name)
		t0 := time.Now()
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("bench: %s: %w", p.name, err)
		}
		r.progress("%s: %.1fs", p.name, time.Since(t0).Seconds())
	}
	fmt.Fprintf(o.Out, "tollgate bench, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(o.Out, "machine: %s; load average %s at the start, %s at the end\n", m, load0, loadAverage())
	fmt.Fprintf(o.Out, "run: tool calls with %d workers and one at a time, %d rounds taking turns, %d warm-up calls each; whole run %.0fs\n\n",
		o.Workers, o.Rounds, o.Warmup, time.Since(start).Seconds())
	printTable(o.Out, r.rows)
	if o.CPUProfile != "" {
		fmt.Fprintf(o.Out, "\nCPU profile of the guarded in-process path: %s (go tool pprof -top %s)\n", o.CPUProfile, o.CPUProfile)
	}
	if o.ExchangeCPUProfile != "" {
		fmt.Fprintf(o.Out, "CPU profile of the concurrent token exchanges: %s (go tool pprof -top %s)\n", o.ExchangeCPUProfile, o.ExchangeCPUProfile)
	}
	return nil
}
