//go:build linux

package duplex

import (
	"compress/flate"
	"testing"

	"github.com/duplexws/duplex/internal/deflate"
)

// TestShareExtra: connections negotiated alike without compression state
// of their own share their extras; one with context takeover keeps its
// own, as its compressor and decompressor are its alone.
func TestShareExtra(t *testing.T) {
	stateless := func() *eventExtra {
		return &eventExtra{extensions: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			closeTimeout: defaultCloseTimeout, threshold: 128,
			comp: deflate.NewCompressor(flate.BestSpeed, 15, false), decomp: newDecompressor(15, false)}
	}
	if a, b := shareExtra(stateless()), shareExtra(stateless()); a != b {
		t.Error("two connections negotiated alike without takeover keep two extras")
	}
	other := stateless()
	other.subprotocol = "chat"
	if shareExtra(other) == shareExtra(stateless()) {
		t.Error("connections with different subprotocols share their extras")
	}
	takeover := func() *eventExtra {
		return &eventExtra{extensions: "permessage-deflate", closeTimeout: defaultCloseTimeout,
			comp: deflate.NewCompressor(flate.BestSpeed, 15, true), decomp: newDecompressor(15, true)}
	}
	x := takeover()
	if shareExtra(x) != x {
		t.Error("a connection with context takeover was given shared extras")
	}
}
