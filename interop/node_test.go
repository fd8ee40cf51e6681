package interop

import (
	"os"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// requireNode returns the node binary, or skips (fails under
// DUPLEX_REQUIRE_ALL=1) when node or the pinned ws package is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node := testkit.RequireTool(t, "node")
	if _, err := os.Stat("node/node_modules/ws/package.json"); err != nil {
		testkit.Missing(t, "node's ws package", "npm ci in interop/node")
	}
	return node
}

// TestNode runs Node's ws (version pinned in node/package-lock.json)
// against duplex, both ways, without compression and with
// permessage-deflate in three configurations.
func TestNode(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	runScriptPeer(t, scriptPeer{
		dir: "node", interp: node, name: "ws",
		server: "echo-server.mjs", client: "client.mjs", urlFirst: true,
		deflate: []deflateRun{
			{"defaults", []string{"--deflate"}, bigSize},
			{"no context takeover", []string{"--deflate", "--server-no-context-takeover", "--client-no-context-takeover"}, smallSize},
			{"10-bit windows", []string{"--deflate", "--server-max-window-bits=10", "--client-max-window-bits=10"}, smallSize},
		},
	})
}
