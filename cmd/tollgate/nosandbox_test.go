package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// TestProductionBuildLinksNoSandbox: go build -tags nosandbox gives a
// binary that links no fake provider, no embedded Redis and no dev
// identity signer or OpenID provider, and refuses sandbox mode with exit status 2.
func TestProductionBuildLinksNoSandbox(t *testing.T) {
	out, err := exec.Command(goTool(), "list", "-tags", "nosandbox", "-deps", "-f", "{{.ImportPath}} {{join .GoFiles \",\"}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, files, _ := strings.Cut(line, " ")
		switch {
		case strings.Contains(pkg, "/fixtures/"), strings.Contains(pkg, "miniredis"):
			// fixtures/idp is the sandbox's OpenID provider among them.
			t.Errorf("the production build links %s", pkg)
		case strings.Contains(pkg, "zitadel"), strings.HasSuffix(pkg, "/oidctest"):
			t.Errorf("the production build links the tests' OpenID provider: %s", pkg)
		case strings.HasSuffix(pkg, "tollgate/auth") && strings.Contains(","+files+",", ",dev.go,"):
			t.Errorf("the production build links the dev identity's signer (auth/dev.go)")
		}
	}
	bin := filepath.Join(t.TempDir(), "tollgate-prod")
	if out, err := exec.Command(goTool(), "build", "-tags", "nosandbox", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nosandbox: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"serve", "--sandbox"}, {"serve"}, {"stdio"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "without the sandbox") || !strings.Contains(string(out), "go build ./cmd/tollgate") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}
