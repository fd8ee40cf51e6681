package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	a := runDuplex(t, strings.NewReader(""), "version")
	b := runDuplex(t, strings.NewReader(""), "--version")
	if a.code != exitOK || b.code != exitOK {
		t.Fatalf("exit %d and %d; want 0 (stderr %q, %q)", a.code, b.code, a.stderr, b.stderr)
	}
	if a.stdout != b.stdout {
		t.Errorf("version printed %q but --version %q", a.stdout, b.stdout)
	}
	// A test binary has build info whose main module is the module
	// under test, with no VCS settings: the commit is "unknown".
	if !strings.HasPrefix(a.stdout, "duplex ") || !strings.Contains(a.stdout, "(commit ") || !strings.Contains(a.stdout, " go1.") {
		t.Errorf("version = %q; want duplex VERSION (commit …) goVERSION", a.stdout)
	}
	if res := runDuplex(t, strings.NewReader(""), "version", "extra"); res.code != exitUsage {
		t.Errorf("version extra: exit %d; want %d", res.code, exitUsage)
	}
}

func TestVersionLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "duplex (devel) (commit unknown) "},
		{"-buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"duplex (devel) (commit unknown) go1.26.8 "},
		{"go install @tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}},
			"duplex v0.3.0 (commit unknown) go1.26.8 "},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.1-0.20261203060000-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-03T06:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"duplex v0.3.1-0.20261203060000-0123456789ab+dirty (commit 0123456789abcdef+dirty, 2026-12-03T06:00:00Z) go1.26.8 "},
	} {
		if got := versionLine(tt.bi); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: versionLine = %q; want prefix %q", tt.name, got, tt.want)
		}
	}
}
