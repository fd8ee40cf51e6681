package interop

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/duplexws/duplex"
)

// requireNode returns the node binary, or skips (fails under
// DUPLEX_REQUIRE_ALL=1) when node or the pinned ws package is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingPeer(t, "node not found on PATH")
	}
	if _, err := os.Stat("node/node_modules/ws/package.json"); err != nil {
		missingPeer(t, "interop/node/node_modules/ws is missing: run `npm ci` in interop/node")
	}
	return node
}

// TestNode runs Node's ws (version pinned in node/package-lock.json)
// against duplex, both ways, without compression and with
// permessage-deflate in three configurations.
func TestNode(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	t.Run("ws server, duplex client", func(t *testing.T) {
		s := startPeerServer(t, "node", node, "echo-server.mjs")
		runDuplexClient(t, s.URL, clientRun{peerFragments: true, burst: 300, closeCodes: true})
	})
	t.Run("duplex server, ws client", func(t *testing.T) {
		s := startDuplexServer(t, nil)
		runPeerScript(t, "node", node, "client.mjs", s.URL)
		s.checkMain(t, true, false)
		s.checkCloses(t)
	})
	for _, v := range []struct {
		name  string
		flags []string
		size  int
	}{
		{"defaults", []string{"--deflate"}, bigSize},
		{"no context takeover", []string{"--deflate", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
		{"10-bit windows", []string{"--deflate", "--server-max-window-bits=10", "--client-max-window-bits=10"}, smallSize},
	} {
		t.Run("deflate "+v.name+"/ws server, duplex client", func(t *testing.T) {
			s := startPeerServer(t, "node", node, append([]string{"echo-server.mjs"}, v.flags...)...)
			runDuplexClient(t, s.URL, clientRun{compression: &duplex.CompressionOptions{}, expectDeflate: true, peerFragments: true, burst: 300, bigSize: v.size})
		})
		t.Run("deflate "+v.name+"/duplex server, ws client", func(t *testing.T) {
			s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
			runPeerScript(t, "node", node, append([]string{"client.mjs", s.URL, "--no-close-codes", fmt.Sprintf("--big-size=%d", v.size)}, v.flags...)...)
			s.checkCompressedMain(t)
		})
	}
}
