package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
)

func (s *story) audit() {
	step("tollgate audit show --session " + s.sessionID)
	if *redisURL == "" {
		// A `make run` sandbox tells loopback callers its embedded Redis.
		if resp, err := http.Get(*issuer + "/dev/redis"); err == nil {
			var body struct {
				URL string `json:"url"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			*redisURL = body.URL
		}
	}
	if *redisURL == "" {
		say("skipped: pass the sandbox's Redis URL (the `redis` line tollgate serve prints) with")
		say("  --redis-url redis://127.0.0.1:PORT  or  TOLLGATE_REDIS_URL=redis://127.0.0.1:PORT")
		return
	}
	args := []string{"audit", "show", "--session", s.sessionID, "--redis-url", *redisURL}
	var cmd *exec.Cmd
	if _, err := os.Stat(*bin); err == nil {
		cmd = exec.Command(*bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", "./cmd/tollgate"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	fmt.Println(indent(string(out), "   "))
	if err != nil {
		fail("audit show", fmt.Errorf("%s: %v", strings.Join(cmd.Args, " "), err))
	}
	for _, want := range []string{humanEmail, agentName} {
		if !strings.Contains(string(out), want) {
			fail("audit show", fmt.Errorf("the audit tree does not name %q", want))
		}
	}
}
