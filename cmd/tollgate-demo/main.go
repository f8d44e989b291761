// Command tollgate-demo is `make demo`: a scripted agent that runs the whole
// provisioning story against a sandbox tollgate (`make run`) and narrates it:
// each step, each human gate (what the human was shown and what it
// answered), each hold and charge, the Cloudflare account each call acted in,
// and at the end the audit tree of the task session, naming the human and
// each agent, with the account of every call.
//
//	go run ./cmd/tollgate-demo [--issuer http://127.0.0.1:7420] [--redis-url redis://…] [--user EMAIL]
//
// Every run registers a fresh domain as a fresh sandbox user
// (demo-<hex>@example.com, whose Cloudflare account is created after the
// terms gate), so it runs again and again against one sandbox without
// running into anyone's monthly cap. --user picks the human instead
// (alice@example.com: the account the sandbox seeds, linked by consent).
//
// It exits 1 naming the step when a step that should succeed fails, and
// stops before buying anything when plan_quote says the plan does not fit.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	seededHuman = "alice@example.com" // the sandbox seeds a Cloudflare account for her
	agentName   = "planner"
	scopes      = "catalog:read domain:read domain:register dns:read dns:write ssl:write token:create " +
		"deploy:preview deploy:production subscription:create spend:read account:link billing:setup"
)

var (
	issuer   = flag.String("issuer", envOr("TOLLGATE_ISSUER", "http://127.0.0.1:7420"), "the sandbox tollgate's base URL")
	redisURL = flag.String("redis-url", os.Getenv("TOLLGATE_REDIS_URL"), "the sandbox's Redis (printed by tollgate serve), for the audit step; env TOLLGATE_REDIS_URL")
	bin      = flag.String("tollgate", "bin/tollgate", "the tollgate binary for the audit step (falls back to go run ./cmd/tollgate)")
	probe    = flag.Bool("probe", false, "only check whether the sandbox answers on /healthz (exit 0) or not (exit 1)")
	wait     = flag.Duration("wait", 0, "only wait up to this long for /healthz to answer, then exit")
	userFlag = flag.String("user", "", "the human's e-mail (default: a fresh sandbox user each run; "+seededHuman+" has a Cloudflare account the sandbox seeds)")
	noElicit = flag.Bool("no-elicit", false, "connect as a client without elicitation: gates come back as approval_required and the human approves on the approvals page")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	flag.Parse()
	*issuer = strings.TrimRight(*issuer, "/")
	switch {
	case *probe:
		if !healthy() {
			os.Exit(1)
		}
		return
	case *wait > 0:
		deadline := time.Now().Add(*wait)
		for !healthy() {
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "tollgate-demo: %s/healthz did not answer within %s\n", *issuer, *wait)
				os.Exit(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return
	}
	if !healthy() {
		fail("preflight", fmt.Errorf("nothing answers on %s/healthz: start the sandbox with `make run` (or run `make demo`, which starts one)", *issuer))
	}
	run()
}

func healthy() bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(*issuer + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// ---- narration ----

var stepNo int

func step(title string) {
	stepNo++
	fmt.Printf("\n━━ %d. %s\n", stepNo, title)
}

func say(format string, a ...any) { fmt.Printf("   "+format+"\n", a...) }

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// stop ends the demo on purpose, before anything is bought: one clear line.
func stop(at, why string) {
	fmt.Fprintf(os.Stderr, "\n✗ demo stopped at %q: %s\n", at, why)
	os.Exit(1)
}

func fail(at string, err error) {
	fmt.Fprintf(os.Stderr, "\n✗ demo failed at %q: %v\n", at, err)
	os.Exit(1)
}

func money(v any) string {
	m, _ := v.(map[string]any)
	if d, ok := m["display"].(string); ok {
		return d
	}
	if m == nil {
		return "-"
	}
	b, _ := json.Marshal(m)
	return string(b)
}
