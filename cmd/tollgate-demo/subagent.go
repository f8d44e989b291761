package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// subAgent hands a follow-up deployment to a second agent: the planner's
// task token is exchanged again, narrower, for a "deployer" agent, so the
// audit tree shows the human, the planner and the deployer. The deployer
// acts for the same human, so in the same account.
func (s *story) subAgent() {
	step("sub-agent: the planner hands a follow-up deployment to a deployer agent (a second exchange)")
	agent, err := devToken("/dev/agent-token", url.Values{"name": {"deployer"}})
	if err != nil {
		fail("deployer attestation", err)
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {s.taskToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"actor_token":        {agent},
		"actor_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"scope":              {"deploy:preview deploy:production"},
	}
	resp, err := http.PostForm(*issuer+"/oauth/token", form)
	if err != nil {
		fail("sub-agent exchange", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		fail("sub-agent exchange", fmt.Errorf("status %d: %v", resp.StatusCode, body))
	}
	s.childSession, _ = body["session_id"].(string)
	say("chain: %s → %s → deployer; scope narrowed to %v; session %v (child of %s)", s.human.email, agentName, body["scope"], s.childSession, s.sessionID)
	s.mcpToken(tok)
	s.connect()
	script := "export default {\n  fetch() { return new Response('hello again from " + s.domain + "'); }\n};\n"
	pv := s.preview(script)
	say("deployer previewed %v", pv["preview_name"])
	pr := s.promote(pv)
	say("deployer promoted: %v now runs sha256 %.12s… (was %.12s…)", pr["name"], pr["sha256"], pr["previous_sha256"])
}
