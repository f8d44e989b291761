package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/mark3labs/mcp-go/client"
)

// callArgs are catalog_get's arguments in every configuration: a read-only
// tool that touches no provider and, unguarded, no Redis.
var callArgs = map[string]any{"id": "cloudflare/registrar:domain.com"}

const benchTool = "catalog_get"

// callConfig is one way of calling the tool.
type callConfig struct {
	transport string // "in-process" or "HTTP"
	guarded   bool
	workers   int
	cs        clients // at least workers of them
	calls     int
	s         sample
}

func (c *callConfig) name() string {
	g := "no guard"
	if c.guarded {
		g = "full guard"
	}
	return fmt.Sprintf("%s, %s, %d workers", c.transport, g, c.workers)
}

// callSetup is the clients and configurations of the tool-call runs.
type callSetup struct {
	token   string
	all     []clients
	configs []*callConfig // per transport and worker count: bare, then guarded
}

func (c *callSetup) close() {
	for _, cs := range c.all {
		cs.close()
	}
}

func (c *callSetup) find(transport string, guarded bool, workers int) *callConfig {
	for _, cfg := range c.configs {
		if cfg.transport == transport && cfg.guarded == guarded && cfg.workers == workers {
			return cfg
		}
	}
	return nil
}

func (r *runner) setupCalls(ctx context.Context) (*callSetup, error) {
	if r.calls != nil {
		return r.calls, nil
	}
	tok, err := r.sys.taskToken(ctx, "bench-calls@example.com", "catalog:read", "")
	if err != nil {
		return nil, err
	}
	// stdio and in-process callers have no HTTP edge: the guard verifies the
	// token itself on every call, from the transport's credentials.
	r.sys.app.Credentials = func(context.Context) (string, error) { return tok, nil }
	cs := &callSetup{token: tok}
	r.calls = cs
	w := r.o.Workers
	type set struct {
		transport string
		guarded   bool
		calls     int
		mk        func() (clients, error)
	}
	for _, st := range []set{
		{"in-process", false, r.o.InProcessCalls, func() (clients, error) {
			return inProcessClients(ctx, func() (*client.Client, error) { return client.NewInProcessClient(r.sys.bare) }, w)
		}},
		{"in-process", true, r.o.InProcessCalls, func() (clients, error) {
			return inProcessClients(ctx, func() (*client.Client, error) { return r.sys.app.InProcessClient() }, w)
		}},
		{"HTTP", false, r.o.HTTPCalls, func() (clients, error) { return httpClients(ctx, r.sys.bsrv.URL+"/mcp", "", w) }},
		{"HTTP", true, r.o.HTTPCalls, func() (clients, error) { return httpClients(ctx, r.sys.srv.URL+"/mcp", tok, w) }},
	} {
		c, err := st.mk()
		if err != nil {
			return nil, fmt.Errorf("%s clients: %w", st.transport, err)
		}
		cs.all = append(cs.all, c)
		// Loaded (w workers) and unloaded (one call at a time): on a small
		// machine the loaded latency is mostly queueing for the CPU.
		cs.configs = append(cs.configs,
			&callConfig{transport: st.transport, guarded: st.guarded, workers: w, cs: c, calls: st.calls},
			&callConfig{transport: st.transport, guarded: st.guarded, workers: 1, cs: c, calls: r.o.SequentialCalls})
	}
	return cs, nil
}

func (cfg *callConfig) op(ctx context.Context, worker, _ int) error {
	_, err := callTool(ctx, cfg.cs[worker], benchTool, callArgs)
	return err
}

// toolCalls measures catalog_get through the full guard and bare, in
// process and over HTTP, loaded and one at a time. The configurations take
// turns (rounds), so that drift (Redis growing, the machine's other work)
// hits all alike.
func (r *runner) toolCalls(ctx context.Context) error {
	cs, err := r.setupCalls(ctx)
	if err != nil {
		return err
	}
	for _, cfg := range cs.configs {
		if _, err := drive(ctx, r.o.Warmup, cfg.workers, cfg.op); err != nil {
			return fmt.Errorf("warm-up %s: %w", cfg.name(), err)
		}
	}
	for round := range r.o.Rounds {
		for _, cfg := range cs.configs {
			n := cfg.calls / r.o.Rounds
			if round == r.o.Rounds-1 {
				n = cfg.calls - n*(r.o.Rounds-1)
			}
			s, err := drive(ctx, n, cfg.workers, cfg.op)
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.name(), err)
			}
			cfg.s.merge(s)
		}
	}
	for _, transport := range []string{"in-process", "HTTP"} {
		for _, w := range []int{r.o.Workers, 1} {
			bare, guarded := cs.find(transport, false, w), cs.find(transport, true, w)
			how := fmt.Sprintf("%s, %d workers", transport, w)
			if w == 1 {
				how = transport + ", one at a time"
			}
			r.rows = append(r.rows, sampleRow("catalog_get, no guard", how, bare.s, "baseline: the same handler, no middleware"))
			note := fmt.Sprintf("vs baseline: **p99 %s**, p50 %s, throughput %s; the guard adds %s at p50, %s at p99",
				ratio(float64(guarded.s.pct(99)), float64(bare.s.pct(99))),
				ratio(float64(guarded.s.pct(50)), float64(bare.s.pct(50))),
				ratio(guarded.s.rate(), bare.s.rate()),
				dur(guarded.s.pct(50)-bare.s.pct(50)), dur(guarded.s.pct(99)-bare.s.pct(99)))
			if w == 1 && r.floorRTT > 0 {
				floor := bare.s.pct(50) + r.floorRTT + r.floorVerify
				note += fmt.Sprintf("; the floor (one round trip + one verify) would be p50 %s", ratio(float64(floor), float64(bare.s.pct(50))))
			}
			r.rows = append(r.rows, sampleRow("catalog_get, full guard", how, guarded.s, note))
		}
	}
	return nil
}

// profile takes a CPU profile of the guarded in-process path alone, after
// the measured runs (profiling costs a little; it stays out of the numbers).
func (r *runner) profile(ctx context.Context) error {
	if r.o.CPUProfile == "" {
		return nil
	}
	cs, err := r.setupCalls(ctx)
	if err != nil {
		return err
	}
	cfg := cs.find("in-process", true, r.o.Workers)
	t0 := time.Now()
	err = profileWhile(r.o.CPUProfile, func() error {
		_, err := drive(ctx, r.o.ProfileCalls, r.o.Workers, cfg.op)
		return err
	})
	r.progress("profiled %d guarded in-process calls in %.1fs", r.o.ProfileCalls, time.Since(t0).Seconds())
	return err
}

// profileWhile writes a CPU profile of run to path.
func profileWhile(path string, run func() error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = run()
	pprof.StopCPUProfile()
	return err
}
