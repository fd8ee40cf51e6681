package interop

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// python is Debian's interpreter, which has the python3-websockets
// package; a python3 earlier on PATH (pyenv) may not.
const python = "/usr/bin/python3"

var pythonProblem = sync.OnceValue(func() string {
	out, err := exec.Command(python, "-c", "import websockets; print(websockets.__version__)").CombinedOutput()
	if err != nil {
		return strings.TrimSpace(fmt.Sprintf("%v %s", err, out))
	}
	return ""
})

func requirePython(t *testing.T) {
	t.Helper()
	if p := pythonProblem(); p != "" {
		t.Logf("%s cannot import websockets: %s", python, p)
		testkit.Missing(t, "python3-websockets", "apt-get install python3-websockets (for "+python+")")
	}
}

// TestPython runs Python's websockets (Debian's python3-websockets)
// against duplex, both ways, without compression, with websockets'
// default compression (12-bit windows, as it tunes them) and with other
// permessage-deflate settings.
func TestPython(t *testing.T) {
	t.Parallel()
	requirePython(t)
	runScriptPeer(t, scriptPeer{
		dir: "python", interp: python, name: "websockets",
		server: "echo_server.py", client: "client.py", plain: []string{"--compression=none"},
		deflate: []deflateRun{
			{"defaults", []string{"--compression=default"}, bigSize},
			{"no context takeover", []string{"--compression=custom", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
			{"9-bit windows", []string{"--compression=custom", "--server-max-window-bits=9", "--client-max-window-bits=9"}, smallSize},
		},
	})
}
