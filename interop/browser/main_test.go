package browser

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// xconnect is the GODEBUG setting that makes net/http's HTTP/2 server
// advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3). net/http reads
// GODEBUG once, in an init function, so setting it from a test is too late
// and a //go:debug line does not reach it (golang/go#71128).
const xconnect = "http2xconnect=1"

// reexecErr says why TestMain could not restart the binary with xconnect;
// the HTTP/2 test reports it.
var reexecErr error

// TestMain restarts the test binary with xconnect added to GODEBUG, the
// same process image and arguments, so that go test sees one process.
// After the tests it prints one line per missing peer (testkit.Missing).
func TestMain(m *testing.M) {
	if !strings.Contains(os.Getenv("GODEBUG"), xconnect) {
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, withGODEBUG(os.Environ(), xconnect))
		}
		// Exec returns only on failure.
		reexecErr = fmt.Errorf("re-executing %s with GODEBUG=%s: %w", exe, xconnect, err)
	}
	os.Exit(testkit.Main(m))
}

// withGODEBUG returns env with setting added to its GODEBUG variable,
// replacing the variable rather than adding a second one.
func withGODEBUG(env []string, setting string) []string {
	var out, settings []string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			if v != "" {
				settings = append(settings, v)
			}
			continue
		}
		out = append(out, kv)
	}
	settings = append(settings, setting)
	return append(out, "GODEBUG="+strings.Join(settings, ","))
}

func TestWithGODEBUG(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want []string
	}{
		{[]string{"HOME=/root"}, []string{"HOME=/root", "GODEBUG=http2xconnect=1"}},
		{[]string{"GODEBUG=", "A=1"}, []string{"A=1", "GODEBUG=http2xconnect=1"}},
		{
			[]string{"GODEBUG=madvdontneed=1,x509sha1=1", "A=1"},
			[]string{"A=1", "GODEBUG=madvdontneed=1,x509sha1=1,http2xconnect=1"},
		},
		{ // a duplicate variable collapses into one
			[]string{"GODEBUG=a=1", "GODEBUG=b=2"},
			[]string{"GODEBUG=a=1,b=2,http2xconnect=1"},
		},
	} {
		if got := withGODEBUG(tt.env, xconnect); !slices.Equal(got, tt.want) {
			t.Errorf("withGODEBUG(%q) = %q; want %q", tt.env, got, tt.want)
		}
	}
}
