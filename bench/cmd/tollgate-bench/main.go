// Command tollgate-bench measures what tollgate's guard costs against a
// guard-less baseline, in one run against a redis-server it starts itself,
// and prints one markdown table (`make bench`). See BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/tollgate-dev/tollgate/bench"
)

func main() {
	o := bench.Options{Out: os.Stdout, Progress: os.Stderr}
	flag.IntVar(&o.Workers, "workers", 8, "concurrent MCP clients per tool-call configuration")
	flag.IntVar(&o.InProcessCalls, "calls-inprocess", 20000, "calls per in-process configuration")
	flag.IntVar(&o.HTTPCalls, "calls-http", 6000, "calls per HTTP configuration")
	flag.IntVar(&o.SequentialCalls, "calls-sequential", 4000, "calls per configuration made one at a time")
	flag.IntVar(&o.Rounds, "rounds", 5, "the configurations take turns this many times")
	flag.IntVar(&o.Warmup, "warmup", 500, "unmeasured calls per configuration first")
	flag.IntVar(&o.ExchangesSequential, "exchanges-seq", 500, "timed sequential token exchanges")
	flag.IntVar(&o.ExchangesConcurrent, "exchanges-concurrent", 3000, "timed concurrent token exchanges")
	flag.IntVar(&o.ExchangeWorkers, "exchange-workers", 16, "concurrent exchanges")
	flag.IntVar(&o.Sessions, "sessions", 10000, "live sessions when memory is measured")
	flag.IntVar(&o.Holds, "holds", 6400, "Hold+Commit pairs per configuration")
	flag.IntVar(&o.HoldWorkers, "hold-workers", 64, "concurrent holders")
	flag.IntVar(&o.TripCalls, "trip-calls", 100, "unpaid calls whose Redis round trips are counted")
	flag.IntVar(&o.PaidCalls, "paid-calls", 4, "paid calls whose Redis round trips are counted (at most 7)")
	flag.IntVar(&o.FloorSamples, "floor-samples", 2000, "samples of each floor component")
	flag.StringVar(&o.CPUProfile, "cpuprofile", filepath.Join(os.TempDir(), "tollgate-guard.cpu.pprof"), "CPU profile of the guarded in-process path (empty: none)")
	flag.IntVar(&o.ProfileCalls, "profile-calls", 10000, "guarded in-process calls made while profiling")
	flag.StringVar(&o.ExchangeCPUProfile, "exchange-cpuprofile", "", "CPU profile of an extra run of the concurrent token exchanges (empty: none)")
	flag.Parse()
	if o.PaidCalls > 7 {
		fmt.Fprintln(os.Stderr, "tollgate-bench: -paid-calls above 7 would pass the sandbox's USD 100 monthly cap")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
