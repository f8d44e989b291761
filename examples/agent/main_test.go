package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compose/composetest"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

// sandbox starts a sandbox tollgate in this process and returns its URL.
func sandbox(t *testing.T) string {
	t.Helper()
	_, ts := composetest.Serve(t, testkit.RedisURL(t), nil)
	return ts.URL
}

func runAgent(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestExampleRunsTwiceWithYes: the example finishes with exit 0 against a
// sandbox, twice in a row (a fresh human and domain per run), answering
// the production gate with -yes.
func TestExampleRunsTwiceWithYes(t *testing.T) {
	base := sandbox(t)
	for i := range 2 {
		code, out, errs := runAgent(t, "", "-url", base, "-yes")
		if code != 0 {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i, code, out, errs)
		}
		for _, want := range []string{"plan_quote", "registered", "refused, as it must be", "-yes: accept", "live:", "the deployer's next call is refused"} {
			if !strings.Contains(out, want) {
				t.Fatalf("run %d: the output does not show %q:\n%s", i, want, out)
			}
		}
	}
}

// TestExampleAsksTheHumanInTheTerminal: without -yes the production gate
// is asked on the terminal; a wrong answer is asked again, y accepts.
// Declining stops the run with exit 1 and nothing promoted.
func TestExampleAsksTheHumanInTheTerminal(t *testing.T) {
	base := sandbox(t)
	code, out, errs := runAgent(t, "maybe\ny\n", "-url", base)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, "approve") || !strings.Contains(out, "answer y or n") || !strings.Contains(out, "└ accept") {
		t.Fatalf("the gate was not asked in the terminal:\n%s", out)
	}

	code, out, errs = runAgent(t, "n\n", "-url", base)
	if code != 1 || !strings.Contains(errs, "deploy_promote") || strings.Contains(out, "live:") {
		t.Fatalf("declined: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// TestExampleFlags: bad usage exits 2 with a message; -help exits 0.
func TestExampleFlags(t *testing.T) {
	for _, args := range [][]string{{"-url", "127.0.0.1:7420"}, {"-domain", "shop.example"}, {"extra"}, {"-nope"}} {
		if code, _, errs := runAgent(t, "", args...); code != 2 || errs == "" {
			t.Fatalf("%v: exit %d, stderr %q; want 2 with a message", args, code, errs)
		}
	}
	if code, _, errs := runAgent(t, "", "-help"); code != 0 || !strings.Contains(errs, "sandbox") {
		t.Fatalf("-help: exit %d, %q", code, errs)
	}
}

// TestExampleWithoutASandbox: nothing listening is a clear exit 1.
func TestExampleWithoutASandbox(t *testing.T) {
	code, _, errs := runAgent(t, "", "-url", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "make run") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
