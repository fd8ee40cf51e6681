package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

var versionCommand = &Command{
	Name:  "version",
	Usage: "version",
	Short: "print the version, the commit it was built from and the Go version",
	Long: `
Version prints the module version of this binary (v1.2.3 when installed
with "go install github.com/duplexws/duplex/cmd/duplex@v1.2.3", "(devel)"
when built from a checkout), the commit it was built from ("+dirty" when
the checkout had uncommitted changes; "unknown" when the build recorded no
VCS information, as with -buildvcs=false), and the Go version.
"duplex --version" prints the same.

Exit status: 0.`,
}

func init() { versionCommand.Run = runVersion }

func runVersion(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := versionCommand
	fs := cmd.flagSet(stdout)
	pos, code, done := cmd.parse(fs, args, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return cmd.usageError(stderr, "unexpected argument %q", pos[0])
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(bi))
	return exitOK
}

// versionLine describes the build: "duplex v1.2.3 (commit 0123abcd…,
// 2026-12-03T06:00:00Z) go1.26.8 linux/amd64". bi may be nil, as it is in
// a binary built without module support.
func versionLine(bi *debug.BuildInfo) string {
	version, commit, at, dirty := "(devel)", "unknown", "", false
	if bi != nil {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += "+dirty"
	}
	if at != "" {
		commit += ", " + at
	}
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	return strings.Join([]string{"duplex", version, "(commit " + commit + ")", goVersion, runtime.GOOS + "/" + runtime.GOARCH}, " ")
}
