package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// findCommand walks the command tree by names.
func findCommand(t *testing.T, root *cobra.Command, path ...string) *cobra.Command {
	t.Helper()
	c, _, err := root.Find(path)
	if err != nil || c.Name() != path[len(path)-1] {
		t.Fatalf("no command %v: %v", path, err)
	}
	return c
}

// TestEnvTwinsAreNotShared: a twin exported for one command does not
// change another (TOLLGATE_SCOPE once narrowed every command with --scope);
// a flag that names the deployment keeps one twin everywhere.
func TestEnvTwinsAreNotShared(t *testing.T) {
	root := newRoot()
	owners := map[string]string{} // twin → the command owning it
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.HasSubCommands() {
			return
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			name := flagEnv(f)
			_, shared := f.Annotations[sharedAnnotation]
			if shared || sharedEnv[f.Name] {
				if name != envName(f.Name) {
					t.Errorf("%s --%s names the deployment but its twin is %s", c.CommandPath(), f.Name, name)
				}
				return
			}
			if o, ok := owners[name]; ok && o != c.CommandPath() {
				t.Errorf("%s is the twin of a flag of both %q and %q", name, o, c.CommandPath())
			}
			owners[name] = c.CommandPath()
		})
	}
	walk(root)
	if len(owners) == 0 {
		t.Fatal("no command-scoped twin found")
	}

	exchange := findCommand(t, root, "token", "exchange")
	login := findCommand(t, root, "dev", "login")
	for c, want := range map[*cobra.Command]string{exchange: "TOLLGATE_TOKEN_EXCHANGE_SCOPE", login: "TOLLGATE_DEV_LOGIN_SCOPE"} {
		if got := flagEnv(c.Flags().Lookup("scope")); got != want {
			t.Errorf("%s --scope twin %s, want %s", c.CommandPath(), got, want)
		}
	}
	t.Setenv("TOLLGATE_SCOPE", "dns:read")
	t.Setenv("TOLLGATE_DEV_LOGIN_SCOPE", "catalog:read")
	t.Setenv("TOLLGATE_ISSUER", "http://127.0.0.1:7999")
	for _, c := range []*cobra.Command{exchange, login} {
		if err := applyEnv(c.Flags()); err != nil {
			t.Fatal(err)
		}
	}
	if got := exchange.Flags().Lookup("scope").Value.String(); got != "" {
		t.Errorf("TOLLGATE_SCOPE (or dev login's twin) narrowed token exchange to %q", got)
	}
	if got := login.Flags().Lookup("scope").Value.String(); got != "catalog:read" {
		t.Errorf("dev login --scope from its own twin: %q", got)
	}
	for _, c := range []*cobra.Command{exchange, login} {
		if got := c.Flags().Lookup("issuer").Value.String(); got != "http://127.0.0.1:7999" {
			t.Errorf("%s --issuer from the shared TOLLGATE_ISSUER: %q", c.CommandPath(), got)
		}
	}
}

func TestVersion(t *testing.T) {
	out, stderr, code := runBin(t, nil, "version", "--json")
	var b buildInfo
	if code != exitOK || json.Unmarshal([]byte(out), &b) != nil || b.Version == "" || !strings.HasPrefix(b.GoVersion, "go1.") || b.Commit == "" {
		t.Fatalf("version --json: exit %d, %q, %q", code, out, stderr)
	}
	text, _, code := runBin(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(text, "tollgate "+b.Version+"\n") || !strings.Contains(text, b.GoVersion) {
		t.Fatalf("version: exit %d\n%s", code, text)
	}
}

// TestStdioHelpOffersNoHTTPFlags: stdio has no listener, so its help does
// not offer the listener's flags (they still parse, from the environment
// serve and stdio share).
func TestStdioHelpOffersNoHTTPFlags(t *testing.T) {
	out, _, code := runBin(t, nil, "stdio", "--help")
	if code != exitOK || !strings.Contains(out, "--public-url") {
		t.Fatalf("stdio --help: exit %d\n%s", code, out)
	}
	for _, f := range []string{"--addr ", "--allowed-hosts", "--allowed-origins", "--max-body-bytes", "--shutdown-timeout",
		"--read-header-timeout", "--max-connections", "--mcp-session-idle", "--idp-client-id", "--idp-client-secret"} {
		if strings.Contains(out, f) {
			t.Errorf("stdio --help offers %s, which it ignores", strings.TrimSpace(f))
		}
	}
}
