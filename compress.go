package duplex

import (
	"compress/flate"
	"net/http"

	"github.com/duplexws/duplex/internal/deflate"
)

// CompressionOptions turns on permessage-deflate (RFC 7692). The library
// leaves compression off unless asked, because it costs CPU on every
// message and helps only compressible traffic: measure before enabling.
// When it is on, memory per idle connection stays small: compressors come
// from pools, and with context takeover a connection keeps only the recent
// history (at most 32 KiB per direction, less with smaller windows).
//
// Window bits (ClientMaxWindowBits, ServerMaxWindowBits) are 8 to 15; 0
// means 15, and other values are taken to the nearer end of that range.
// A window below 15 bits saves memory only with context takeover, and
// costs ratio: duplex's compressor still refers back within it at level 1
// with takeover, and otherwise codes each message with Huffman codes
// alone. A peer that refers further back than the window agreed for it
// (2^N bytes, or 512 when N is 8, since zlib turns 8 into 9) fails the
// connection with 1007.
type CompressionOptions struct {
	// Level is the flate level, 1 (fastest) to 9 (smallest). Default: 1.
	Level int

	// Threshold is the size below which a message is sent uncompressed:
	// compressing a few bytes costs more than it saves. Default: 128.
	Threshold int

	// NoContextTakeover compresses every message on its own, in both
	// directions, instead of letting it refer to earlier messages. It
	// costs ratio and saves the history memory. Default: false.
	NoContextTakeover bool

	// ClientMaxWindowBits bounds the LZ77 window of the client's
	// compressor to 2^N bytes (RFC 7692 §7.1.2.2). A server asks for it
	// when the client's offer carries client_max_window_bits, as browsers'
	// offers do, and with context takeover then keeps 2^N bytes of the
	// client's history instead of 32 KiB. A client offers it and keeps to
	// it. Default: 15.
	ClientMaxWindowBits int

	// ServerMaxWindowBits bounds the window of the server's compressor to
	// 2^N bytes (RFC 7692 §7.1.2.1). A server announces it and keeps to
	// it; a client asks for it, and with context takeover then keeps 2^N
	// bytes of the server's history. Default: 15.
	ServerMaxWindowBits int
}

func (o *CompressionOptions) config() deflate.Config {
	return deflate.Config{
		NoContextTakeover:   o.NoContextTakeover,
		ServerMaxWindowBits: clampBits(o.ServerMaxWindowBits),
		ClientMaxWindowBits: clampBits(o.ClientMaxWindowBits),
	}
}

// clampBits maps a window size of CompressionOptions to the one used: 0
// stays 0 (the default, 15), other values are brought into 8..15.
func clampBits(n int) int {
	if n == 0 {
		return 0
	}
	return min(max(n, 8), 15)
}

func (o *CompressionOptions) level() int {
	if o.Level < flate.BestSpeed || o.Level > flate.BestCompression {
		return flate.BestSpeed
	}
	return o.Level
}

func (o *CompressionOptions) threshold() int {
	if o.Threshold <= 0 {
		return 128
	}
	return o.Threshold
}

func windowBits(n int) int {
	if n == 0 {
		return 15
	}
	return n
}

// accept negotiates the server side: it picks the first acceptable offer
// in h and returns the response element and the per-direction state.
func (o *CompressionOptions) accept(h http.Header) (string, *deflate.Compressor, *deflate.Decompressor, int) {
	if o == nil {
		return "", nil, nil, 0
	}
	p, ok := deflate.Accept(deflate.ParseOffers(h.Values("Sec-WebSocket-Extensions")), o.config())
	if !ok {
		return "", nil, nil, 0
	}
	comp := deflate.NewCompressor(o.level(), windowBits(p.ServerMaxWindowBits), !p.ServerNoContextTakeover)
	decomp := newDecompressor(windowBits(p.ClientMaxWindowBits), !p.ClientNoContextTakeover)
	return p.String(), comp, decomp, o.threshold()
}

// offer returns the client's offer, or nil without compression.
func (o *CompressionOptions) offer() *deflate.Params {
	if o == nil {
		return nil
	}
	p := deflate.Offer(o.config())
	return &p
}

// agree validates the server's answer to offered and builds the client's
// per-direction state. A nil compressor means the server declined.
func (o *CompressionOptions) agree(h http.Header, offered *deflate.Params) (string, *deflate.Compressor, *deflate.Decompressor, int, error) {
	values := h.Values("Sec-WebSocket-Extensions")
	if offered == nil {
		if len(headerTokens(h, "Sec-WebSocket-Extensions")) > 0 {
			return "", nil, nil, 0, errUnofferedExtension
		}
		return "", nil, nil, 0, nil
	}
	p, ok, err := deflate.ParseResponse(values, *offered)
	if err != nil || !ok {
		return "", nil, nil, 0, err
	}
	comp := deflate.NewCompressor(o.level(), windowBits(p.ClientMaxWindowBits), !p.ClientNoContextTakeover)
	decomp := newDecompressor(windowBits(p.ServerMaxWindowBits), !p.ServerNoContextTakeover)
	return p.String(), comp, decomp, o.threshold(), nil
}

// newDecompressor returns a connection's decompressor: its own with
// context takeover, which keeps the peer's history; without, the shared
// one of its window, for which the engine takes a working one per
// compressed message (parser.decomp), so an idle connection keeps none.
func newDecompressor(windowBits int, takeover bool) *deflate.Decompressor {
	if takeover {
		return deflate.NewDecompressor(windowBits, true)
	}
	return deflate.SharedDecompressor(windowBits)
}
