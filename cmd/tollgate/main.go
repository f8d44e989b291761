// Command tollgate is an MCP server that lets AI agents provision Cloudflare
// and Stripe resources behind task-scoped tokens, human gates and monthly
// spend caps. Run `tollgate --help`.
package main

import (
	"errors"
	"fmt"
	"os"
)

// Exit statuses (SPEC §2): 0 success, 1 refusal, 2 bad usage.
const (
	exitOK      = 0
	exitRefused = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "tollgate:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitRefused
}

// usageError marks bad usage (exit 2): unknown flags, bad values, missing arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usage(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }
