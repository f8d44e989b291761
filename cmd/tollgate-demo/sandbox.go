package main

// What the demo asks the sandbox itself rather than the agent's MCP
// endpoint: the dev identity, the embedded Redis, what the fake Cloudflare
// runs, and the tollgate CLI on the sandbox's Redis.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

func devToken(path string, form url.Values) (string, error) {
	resp, err := http.PostForm(*issuer+path, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Token == "" {
		return "", fmt.Errorf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	return body.Token, nil
}

// sandboxRedis asks a sandbox for its embedded Redis (it tells loopback
// callers); "" when it does not.
func sandboxRedis() string {
	resp, err := http.Get(*issuer + "/dev/redis")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		URL string `json:"url"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return ""
	}
	return body.URL
}

// chooseHuman picks who the human is and says why: --user if given, else
// a fresh e-mail, which has no Cloudflare account yet and so gets one
// created after the terms gate. A fresh human starts with an untouched
// monthly cap, which is what lets the demo run again and again against
// the same sandbox.
func chooseHuman(suffix string) (email, why string) {
	if *userFlag != "" {
		return *userFlag, "given with --user"
	}
	return "demo-" + suffix + "@example.com", "a fresh sandbox user for this run, so an earlier run's spending cannot get in the way (--user EMAIL picks one; " +
		seededHuman + " has a Cloudflare account the sandbox seeds)"
}

// tollgate runs the tollgate CLI (bin/tollgate, else go run) and returns
// its stdout; its stderr comes back in the error.
func tollgate(args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if _, err := os.Stat(*bin); err == nil {
		cmd = exec.Command(*bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", "./cmd/tollgate"}, args...)...)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// liveScripts is what the sandbox's fake Cloudflare runs in one account:
// Worker name → SHA-256.
func liveScripts(account string) (map[string]string, error) {
	resp, err := http.Get(*issuer + "/dev/cloudflare/scripts?account=" + url.QueryEscape(account))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("/dev/cloudflare/scripts: status %d, %v", resp.StatusCode, err)
	}
	return body.Scripts, nil
}

// workerName is the Worker serving domain, by tollgate's encoding
// (docs/tenancy.md): each '-' becomes "--", then each '.' becomes '-'.
func workerName(domain string) string {
	return strings.ReplaceAll(strings.ReplaceAll(domain, "-", "--"), ".", "-")
}
