package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// shellBlock is one ```sh block of the README.
type shellBlock struct {
	line        int    // README.md line of the opening fence
	body        string // the commands, as written
	walkthrough bool   // marked <!-- walkthrough -->: the test runs it
	notRun      string // marked <!-- not run: why -->: why the test does not
}

var notRunMarker = regexp.MustCompile(`^<!-- not run: (.+) -->$`)

// readmeShellBlocks reads README.md's shell blocks and their markers: the
// line just before the opening fence or just after the closing one is
// <!-- walkthrough --> or <!-- not run: why -->.
func readmeShellBlocks(t *testing.T) []shellBlock {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.ModuleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var blocks []shellBlock
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("README.md:%d: a code block is never closed", i+1)
		}
		if lang == "sh" || lang == "bash" || lang == "shell" {
			b := shellBlock{line: i + 1, body: strings.Join(lines[i+1:end], "\n")}
			for _, m := range []string{neighbour(lines, i-1), neighbour(lines, end+1)} {
				if m == "<!-- walkthrough -->" {
					b.walkthrough = true
				} else if sm := notRunMarker.FindStringSubmatch(m); sm != nil {
					b.notRun = sm[1]
				}
			}
			blocks = append(blocks, b)
		}
		i = end
	}
	return blocks
}

func neighbour(lines []string, i int) string {
	if i < 0 || i >= len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[i])
}

// TestREADMEShellBlocksAreMarked: every shell block of the README says
// whether the walkthrough test runs it, and why not when it does not, so a
// new block cannot silently escape the test.
func TestREADMEShellBlocksAreMarked(t *testing.T) {
	blocks := readmeShellBlocks(t)
	run := 0
	for _, b := range blocks {
		switch {
		case b.walkthrough && b.notRun != "":
			t.Errorf("README.md:%d: a shell block marked both walkthrough and not run", b.line)
		case !b.walkthrough && b.notRun == "":
			t.Errorf("README.md:%d: a shell block with neither <!-- walkthrough --> before it nor <!-- not run: why --> after it", b.line)
		case b.walkthrough:
			run++
		}
	}
	if run < 5 {
		t.Errorf("only %d walkthrough blocks in README.md; the step-by-step section is run as written", run)
	}
}

// TestREADMEWalkthrough runs the README's walkthrough blocks in order, as
// written, in one bash, against a sandbox this test starts on its own port
// (TOLLGATE_ISSUER, the one variable the README has the reader set), with
// this tree's tollgate first on PATH. A failing command fails the test,
// naming its block.
func TestREADMEWalkthrough(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl (the README's discovery and /dev/redis steps use it)")
	}
	var script strings.Builder
	script.WriteString("set -eu\nBLOCK=none\n")
	script.WriteString(`trap 'rc=$?; if [ $rc != 0 ]; then echo "README walkthrough: the block at README.md line $BLOCK failed (exit $rc)" >&2; fi' EXIT` + "\n")
	n := 0
	for _, b := range readmeShellBlocks(t) {
		if !b.walkthrough {
			continue
		}
		n++
		fmt.Fprintf(&script, "BLOCK=%d\necho '::: README.md line %d'\n%s\n", b.line, b.line, b.body)
	}
	if n == 0 {
		t.Fatal("README.md has no <!-- walkthrough --> blocks")
	}

	bin := testkit.Binary(t)
	p := testkit.Serve(t, bin, nil) // its own embedded Redis, as make run has
	out, stderr := runShell(t, bash, script.String(), bin, p.URL, 3*time.Minute)
	if t.Failed() {
		return
	}
	// The blocks ran to the end; what they printed is what the README says.
	for _, want := range []string{
		"user:alice@example.com",                   // token inspect, whoami
		"spiffe://tollgate.sandbox/agent/deployer", // the sub-agent's chain
		"revoked",       // the revoked sub-agent's call
		"shop-demo.com", // domain_check, domain_register, audit show
		"registered",
		`"cloudflare/registrar:domain.com"`, // the catalog
	} {
		if !strings.Contains(out+stderr, want) {
			t.Errorf("the walkthrough never printed %q\nstdout:\n%s\nstderr:\n%s", want, out, stderr)
		}
	}
}

// runShell runs script with bash, tollgate (bin) first on PATH and
// TOLLGATE_ISSUER naming the sandbox; no TOLLGATE_* variable of the test's
// own environment leaks in. It fails the test when bash exits non-zero.
func runShell(t *testing.T, bash, script, bin, issuer string, within time.Duration) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--noprofile", "--norc", "-c", script)
	cmd.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOLLGATE_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "TOLLGATE_ISSUER="+issuer)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Errorf("%v (timeout %v: %v)\nstdout:\n%s\nstderr:\n%s", err, within, ctx.Err(), o.String(), e.String())
	}
	return o.String(), e.String()
}

// TestServeBannerRuns: the commands the sandbox prints at start-up work as
// printed, pasted into a shell, and leave the shell's $USER alone.
func TestServeBannerRuns(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := testkit.Binary(t)
	p := testkit.Serve(t, bin, nil)
	var cmds []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(p.Stderr()))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Get a task token"):
			in = true
		case in && !strings.HasPrefix(line, "  "):
			in = false
		case in:
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("the banner's commands: %q\nstderr:\n%s", cmds, p.Stderr())
	}
	for _, c := range cmds {
		if strings.HasPrefix(c, "USER=") || strings.Contains(c, " USER=") {
			t.Errorf("the banner overwrites the shell's $USER: %q", c)
		}
	}
	const login = "tollgate-banner-test"
	script := "set -eu\nUSER=" + login + "\n" + strings.Join(cmds, "\n") + "\n" +
		`[ "$USER" = ` + login + ` ] || { echo "USER changed to $USER" >&2; exit 1; }` + "\n"
	// The banner names this sandbox itself (export TOLLGATE_ISSUER=…), so
	// runShell's TOLLGATE_ISSUER is overridden by what it printed.
	out, stderr := runShell(t, bash, script, bin, "http://127.0.0.1:1", time.Minute)
	if !strings.Contains(out, "user:you@example.com") {
		t.Errorf("the banner's whoami: stdout %q stderr %q", out, stderr)
	}
}

// TestREADMEConfigTableMatchesServeHelp: every flag of `tollgate serve
// --help` is in the README's configuration table, and every flag there is
// one serve has.
func TestREADMEConfigTableMatchesServeHelp(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testkit.ModuleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no ## Configuration section")
	}
	section, _, _ := strings.Cut(after, "\n## ")
	flagRe := regexp.MustCompile("`(--[a-z0-9-]+)`")
	table := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "|") {
			continue
		}
		for _, m := range flagRe.FindAllStringSubmatch(cells[1], -1) {
			table[m[1]] = true
		}
	}

	out, err := exec.Command(testkit.Binary(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
	_, flags, ok := strings.Cut(string(out), "\nFlags:\n")
	if !ok {
		t.Fatalf("serve --help has no Flags: section\n%s", out)
	}
	helpRe := regexp.MustCompile(`^\s+(?:-[a-z], )?(--[a-z0-9-]+)`)
	help := map[string]bool{}
	for _, line := range strings.Split(flags, "\n") {
		if m := helpRe.FindStringSubmatch(line); m != nil && m[1] != "--help" {
			help[m[1]] = true
		}
	}
	if len(help) < 20 {
		t.Fatalf("read only %d flags from serve --help", len(help))
	}
	for _, f := range slices.Sorted(maps.Keys(help)) {
		if !table[f] {
			t.Errorf("serve %s is not in README.md's configuration table", f)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(table)) {
		if !help[f] {
			t.Errorf("README.md's configuration table lists %s, which tollgate serve does not have", f)
		}
	}
}

// TestREADMEComPriceMatchesTheSandbox: the .com price the README quotes is
// the one the sandbox's catalog (the fixtures' price list) charges.
func TestREADMEComPriceMatchesTheSandbox(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testkit.ModuleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"amount_minor": (\d+), "currency": "usd", "display": "([0-9.]+) USD",\s+"interval": "year"}` + "` for a `.com`").FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("README.md no longer quotes the .com price as a pricing object (\"for a `.com`\")")
	}
	minor, _ := strconv.ParseInt(m[1], 10, 64)

	p := testkit.Serve(t, testkit.Binary(t), nil)
	resp, err := http.Get(p.URL + "/v1/catalog?q=domain.com")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct {
		Services []struct {
			ID      string `json:"id"`
			Pricing struct {
				AmountMinor int64  `json:"amount_minor"`
				Display     string `json:"display"`
			} `json:"pricing"`
		} `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		t.Fatal(err)
	}
	for _, s := range cat.Services {
		if s.ID != "cloudflare/registrar:domain.com" {
			continue
		}
		if s.Pricing.AmountMinor != minor || s.Pricing.Display != m[2]+" USD" {
			t.Errorf("README.md quotes .com at %s (%s USD); the sandbox charges %d (%s)", m[1], m[2], s.Pricing.AmountMinor, s.Pricing.Display)
		}
		for _, quoted := range regexp.MustCompile(`([0-9]+\.[0-9]{2}) USD `+"`\\.com`").FindAllStringSubmatch(string(raw), -1) {
			if quoted[1]+" USD" != s.Pricing.Display {
				t.Errorf("README.md says %q; the sandbox's .com is %s", quoted[0], s.Pricing.Display)
			}
		}
		return
	}
	t.Fatalf("the sandbox's catalog has no cloudflare/registrar:domain.com")
}
