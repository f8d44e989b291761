package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

func (s *story) audit() {
	step("tollgate audit show --session " + s.sessionID)
	if *redisURL == "" {
		say("skipped: pass the sandbox's Redis URL (the `redis` line tollgate serve prints) with")
		say("  --redis-url redis://127.0.0.1:PORT  or  TOLLGATE_REDIS_URL=redis://127.0.0.1:PORT")
		return
	}
	out, err := tollgate("audit", "show", "--session", s.sessionID, "--redis-url", *redisURL)
	fmt.Println(indent(string(out), "   "))
	if err != nil {
		fail("audit show", err)
	}
	for _, want := range []string{s.human.email, agentName, "deployer"} {
		if !strings.Contains(string(out), want) {
			fail("audit show", fmt.Errorf("the audit tree does not name %q", want))
		}
	}
	s.auditAccounts()
}

// exported is the part of an `audit export` line the demo reads.
type exported struct {
	Time     string            `json:"time"`
	Event    string            `json:"event"`
	Actors   []string          `json:"actors"`
	Tool     string            `json:"tool"`
	Decision string            `json:"decision"`
	Code     string            `json:"code"`
	Detail   map[string]string `json:"detail"`
}

// cloudflareTools are the tools of the story that act in the human's
// Cloudflare account: the audit must say which account each call acted in.
var cloudflareTools = map[string]bool{
	"domain_check": true, "domain_register": true, "dns_upsert": true, "ssl_configure": true,
	"api_token_create": true, "deploy_preview": true, "deploy_promote": true,
}

// auditAccounts prints, from `tollgate audit export`, the account each
// tool call of the task acted in (detail.account, which audit show does
// not draw), and fails if a Cloudflare call that went through does not
// name the human's linked account.
func (s *story) auditAccounts() {
	step("tollgate audit export: the Cloudflare account each tool call acted in (detail.target, detail.account)")
	for _, sid := range []string{s.sessionID, s.childSession} {
		if sid == "" {
			continue
		}
		out, err := tollgate("audit", "export", "--session", sid, "--redis-url", *redisURL)
		if err != nil {
			fail("audit export", err)
		}
		say("session %s", sid)
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		// An admitted call's first entry is written before its account is
		// resolved; a later entry of the same call names it (the call's
		// outcome, or its hold and commit when it is paid). unnamed holds
		// the Cloudflare tools whose last admitted call no entry has named
		// yet (the story calls each tool of one session one at a time).
		unnamed := map[string]bool{}
		for sc.Scan() {
			var e exported
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				fail("audit export", fmt.Errorf("a line is not JSON: %v", err))
			}
			a := e.Detail["account"]
			if a != "" && a != s.account {
				fail("audit export", fmt.Errorf("the audit says %s acted in account %q, not the human's linked account %s", e.Tool, a, s.account))
			}
			switch {
			case a != "" || e.Code != "":
				delete(unnamed, e.Tool) // named, or the call stopped (a gate, a refusal)
			case e.Event == "tool_call" && e.Decision == "allow" && cloudflareTools[e.Tool]:
				unnamed[e.Tool] = true
			}
			if e.Event != "tool_call" && e.Event != "tool_result" && e.Event != "commit" {
				continue
			}
			agent := "-"
			if len(e.Actors) > 0 {
				agent = e.Actors[0][strings.LastIndex(e.Actors[0], "/")+1:]
			}
			say("  %-8s %-11s %-18s %-22s target %-28s account %s", agent, e.Event, e.Tool, strings.TrimSpace(e.Decision+" "+e.Code), orDefault(e.Detail["target"], "-"), orDefault(a, "-"))
		}
		for tool := range unnamed {
			fail("audit export", fmt.Errorf("no audit entry says which Cloudflare account %s acted in (the human's linked account is %s)", tool, s.account))
		}
		if err := sc.Err(); err != nil {
			fail("audit export", err)
		}
	}
}
