// Command agent is a small Go agent built on tollgate's agent SDK
// (github.com/tollgate-dev/tollgate/agent), run against a sandbox tollgate:
//
//	make run                                          # in one terminal
//	go run ./examples/agent -url http://127.0.0.1:7420  # in another
//
// It signs a fresh sandbox human in, exchanges a task token for its
// "planner" agent (scoped to one new domain with a Cloudflare budget),
// asks plan_quote what the plan costs, registers the domain, and hands the
// deployment to a "deployer" sub-agent through agent.Delegate, with
// narrower scope and budget. The deployer uploads a Worker preview and
// promotes it; tollgate asks the human first, and this program asks you
// in the terminal (-yes answers for you). At the end it revokes the task.
//
// Exit status: 0 when the domain is registered and live, 1 when a step
// fails (the step and tollgate's reason are printed), 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	url     string
	yes     bool
	human   string
	domain  string
	timeout time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", envOr("TOLLGATE_URL", "http://127.0.0.1:7420"), "base URL of a sandbox tollgate (started with make run); env TOLLGATE_URL")
	fs.BoolVar(&o.yes, "yes", false, "answer every form gate with yes, as a consenting human would (sandbox demos and scripts); without it you are asked in the terminal")
	fs.StringVar(&o.human, "human", "", "the sandbox human's e-mail (default: a fresh one per run, so an earlier run's spend never fills this run's monthly cap)")
	fs.StringVar(&o.domain, "domain", "", "the .com domain to register (default: a fresh agent-XXXXXX.com per run)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./examples/agent [-url URL] [-yes] [-human EMAIL] [-domain NAME]\n\n"+
			"A Go agent on tollgate's agent SDK: it quotes a plan, registers a domain and hands the\n"+
			"deployment to a sub-agent, asking you at tollgate's human gates. It needs a sandbox\n"+
			"tollgate (`make run`): it signs in with the sandbox's dev identity and links the\n"+
			"human's sandbox Cloudflare account. Exit status 0 when done, 1 when a step fails.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.url = strings.TrimRight(o.url, "/")
	if !strings.HasPrefix(o.url, "http://") && !strings.HasPrefix(o.url, "https://") {
		return o, fmt.Errorf("-url %q must be tollgate's base URL, like http://127.0.0.1:7420", o.url)
	}
	if o.domain != "" && !strings.HasSuffix(o.domain, ".com") {
		return o, fmt.Errorf("-domain %q: give a .com name (the plan and budget here are for .com prices)", o.domain)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("-timeout must be positive")
	}
	return o, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s := newStory(o, stdin, stdout)
	if err := s.run(ctx); err != nil {
		fmt.Fprintf(stderr, "\nagent: %v\n", err)
		return 1
	}
	return 0
}
