package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/compose"
)

// buildInfo is what tollgate version reports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified,omitempty"`
	BuildTime string `json:"build_time,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// readBuildInfo combines the -ldflags version (make build) with what the
// Go toolchain stamped into the binary: the module version of go install
// …@vX, and the VCS commit of a build from a checkout.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: compose.Version, Commit: orDefault(commit, "unknown"), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; compose.Version == defaultVersion && v != "" && v != "(devel)" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.BuildTime = s.Value
		}
	}
	return b
}

// defaultVersion is compose.Version when no -ldflags set it.
var defaultVersion = compose.Version

// commit is set by make build (-X main.commit=…) for builds where the Go
// toolchain stamps no VCS data (a git worktree, -buildvcs=false).
var commit string

func newVersion() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from and the Go version",
		Long: `version prints tollgate's version, the git commit it was built from (with
"+dirty" when the checkout had changes), and the Go toolchain and platform.

make build stamps the version from git describe; go install …@vX.Y.Z reports
the module version; other builds say 0.1.0-dev.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			if asJSON {
				out, err := json.MarshalIndent(b, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
				return nil
			}
			commit := b.Commit
			if b.Modified {
				commit += "+dirty"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tollgate %s\n  commit  %s\n  go      %s %s\n", b.Version, commit, b.GoVersion, b.Platform)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {version, commit, modified, build_time, go_version, platform} as JSON")
	return cmd
}
