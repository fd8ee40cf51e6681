package interop

import (
	"fmt"
	"os/exec"
	"sync"
	"testing"

	"github.com/duplexws/duplex"
)

// python is Debian's interpreter, which has the python3-websockets
// package; a python3 earlier on PATH (pyenv) may not.
const python = "/usr/bin/python3"

var pythonProblem = sync.OnceValue(func() string {
	out, err := exec.Command(python, "-c", "import websockets; print(websockets.__version__)").CombinedOutput()
	if err != nil {
		return python + " cannot import websockets (apt-get install python3-websockets): " + string(out)
	}
	return ""
})

func requirePython(t *testing.T) {
	t.Helper()
	if p := pythonProblem(); p != "" {
		missingPeer(t, p)
	}
}

// TestPython runs Python's websockets (Debian's python3-websockets)
// against duplex, both ways, without compression, with websockets'
// default compression (12-bit windows, as it tunes them) and with other
// permessage-deflate settings.
func TestPython(t *testing.T) {
	t.Parallel()
	requirePython(t)
	t.Run("websockets server, duplex client", func(t *testing.T) {
		s := startPeerServer(t, "python", python, "echo_server.py", "--compression=none")
		runDuplexClient(t, s.URL, clientRun{peerFragments: true, burst: 300, closeCodes: true})
	})
	t.Run("duplex server, websockets client", func(t *testing.T) {
		s := startDuplexServer(t, nil)
		runPeerScript(t, "python", python, "client.py", "--compression=none", s.URL)
		s.checkMain(t, true, false)
		s.checkCloses(t)
	})
	for _, v := range []struct {
		name  string
		flags []string
		size  int
	}{
		{"defaults", []string{"--compression=default"}, bigSize},
		{"no context takeover", []string{"--compression=custom", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
		{"9-bit windows", []string{"--compression=custom", "--server-max-window-bits=9", "--client-max-window-bits=9"}, smallSize},
	} {
		t.Run("deflate "+v.name+"/websockets server, duplex client", func(t *testing.T) {
			s := startPeerServer(t, "python", python, append([]string{"echo_server.py"}, v.flags...)...)
			runDuplexClient(t, s.URL, clientRun{compression: &duplex.CompressionOptions{}, expectDeflate: true, peerFragments: true, burst: 300, bigSize: v.size})
		})
		t.Run("deflate "+v.name+"/duplex server, websockets client", func(t *testing.T) {
			s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
			runPeerScript(t, "python", python, append(append([]string{"client.py", "--no-close-codes", fmt.Sprintf("--big-size=%d", v.size)}, v.flags...), s.URL)...)
			s.checkCompressedMain(t)
		})
	}
}
