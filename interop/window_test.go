package interop

import (
	"fmt"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
)

// TestWindowBits runs Node's ws and Python's websockets, with their
// default offers, against a duplex server that keeps context takeover and
// asks for 10-bit windows both ways (CompressionOptions.ClientMaxWindowBits
// and ServerMaxWindowBits, duplex serve's --compress-window-bits 10). Both
// peers honour client_max_window_bits; duplex fails a connection whose
// peer refers further back (1007), so a clean exchange of the scripts'
// messages, compressed both ways, shows the window was kept.
func TestWindowBits(t *testing.T) {
	t.Parallel()
	peers := []struct {
		name   string
		interp func(t *testing.T) string
		dir    string
		args   func(url string, flags ...string) []string
	}{
		{"ws", requireNode, "node", func(url string, flags ...string) []string {
			return append([]string{"client.mjs", url, "--deflate"}, flags...)
		}},
		{"websockets", func(t *testing.T) string { requirePython(t); return python }, "python", func(url string, flags ...string) []string {
			return append(append([]string{"client.py", "--compression=default"}, flags...), url)
		}},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			interp := p.interp(t)
			s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{
				ClientMaxWindowBits: 10, ServerMaxWindowBits: 10,
			}})
			runPeerScript(t, p.dir, interp, p.args(s.URL, "--no-close-codes", fmt.Sprintf("--big-size=%d", smallSize))...)
			s.checkCompressedMain(t)
			ext := s.conn("main").extensions
			for _, want := range []string{"server_max_window_bits=10", "client_max_window_bits=10"} {
				if !strings.Contains(ext, want) {
					t.Errorf("duplex server agreed %q with %s; want %s", ext, p.name, want)
				}
			}
			if strings.Contains(ext, "no_context_takeover") {
				t.Errorf("duplex server agreed %q with %s; want context takeover", ext, p.name)
			}
		})
	}
}
