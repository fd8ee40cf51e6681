package duplex_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// TestCompressionWindowNegotiation checks the Sec-WebSocket-Extensions
// answer of a server whose CompressionOptions set window bits, against
// the offers browsers and other clients send (RFC 7692 §7.1.2).
func TestCompressionWindowNegotiation(t *testing.T) {
	tests := []struct {
		name  string
		opts  duplex.CompressionOptions
		offer string
		want  string
	}{
		{"Chromium's offer, client window 10", duplex.CompressionOptions{ClientMaxWindowBits: 10},
			"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10"},
		{"both windows", duplex.CompressionOptions{ClientMaxWindowBits: 9, ServerMaxWindowBits: 11},
			"permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=11; client_max_window_bits=9"},
		{"client offers less than we ask", duplex.CompressionOptions{ClientMaxWindowBits: 12},
			"permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits=9"},
		{"offer without client_max_window_bits cannot be limited", duplex.CompressionOptions{ClientMaxWindowBits: 10},
			"permessage-deflate", "permessage-deflate"},
		{"default asks nothing", duplex.CompressionOptions{},
			"permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"15 is the default", duplex.CompressionOptions{ClientMaxWindowBits: 15, ServerMaxWindowBits: 15},
			"permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"below 8 is 8", duplex.CompressionOptions{ClientMaxWindowBits: 3},
			"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=8"},
		{"above 15 is 15", duplex.CompressionOptions{ClientMaxWindowBits: 20, ServerMaxWindowBits: 16},
			"permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"with no context takeover", duplex.CompressionOptions{ClientMaxWindowBits: 10, NoContextTakeover: true},
			"permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := echoServer(t, &duplex.AcceptOptions{Compression: &tt.opts})
			peer, resp := testkit.DialRaw(t, url, http.Header{"Sec-WebSocket-Extensions": {tt.offer}})
			defer peer.Close()
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != tt.want {
				t.Errorf("offer %q: answer %q; want %q", tt.offer, got, tt.want)
			}
		})
	}
}

// farMatch is a compressed message (RFC 7692 §7.2.1, without its 00 00 ff
// ff) that copies 8 bytes from dist bytes back, 512 or 513: a stored block
// of 600 bytes, then a fixed-Huffman block with one match.
func farMatch(dist int) (payload, want []byte) {
	var stored []byte
	for i := range 600 {
		stored = append(stored, byte(i%251))
	}
	match := map[int]string{
		// BFINAL 0, BTYPE 01; length 8 (code 0000110); distance code 17 +
		// 7 extra bits 127 = 512; end of block; empty stored block header.
		512: "82 c5 3f 00",
		// ... distance code 18 + 8 extra bits 0 = 513; ...
		513: "82 25 00 00 00",
	}[dist]
	payload = append(testkit.Hex("00 5802 a7fd"), stored...) // BFINAL 0, stored, LEN 600, NLEN
	payload = append(payload, testkit.Hex(match)...)
	want = append(stored, stored[600-dist:600-dist+8]...)
	return payload, want
}

// TestCompressionWindowEnforced checks that a client which compresses with
// a larger window than the server asked for fails the connection with
// 1007, even when the distance stays within the message, and that one
// which keeps to it is served.
func TestCompressionWindowEnforced(t *testing.T) {
	for _, takeover := range []bool{true, false} {
		for _, dist := range []int{512, 513} {
			t.Run(fmt.Sprintf("takeover=%v/dist%d", takeover, dist), func(t *testing.T) {
				url := echoServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{
					ClientMaxWindowBits: 9, NoContextTakeover: !takeover,
				}})
				peer, resp := testkit.DialRaw(t, url, http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}})
				defer peer.Close()
				if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(got, "client_max_window_bits=9") {
					t.Fatalf("answer %q; want client_max_window_bits=9", got)
				}
				payload, want := farMatch(dist)
				if err := peer.WriteFrame(true, wire.RSV1, wire.OpBinary, true, payload); err != nil {
					t.Fatal(err)
				}
				if dist > 512 {
					peer.ExpectClose(t, uint16(duplex.StatusInvalidFramePayloadData))
					return
				}
				h, got, err := peer.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				if h.RSV == wire.RSV1 { // 608 bytes, above the threshold
					got, err = io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(got), strings.NewReader("\x00\x00\xff\xff"))))
					if err != nil && err != io.ErrUnexpectedEOF {
						t.Fatalf("inflate the echo: %v", err)
					}
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("echo of %d bytes; want %d", len(got), len(want))
				}
			})
		}
	}
}

// TestCompressionWindowOffer checks what Dial offers for window bits, and
// that it takes the server's answer.
func TestCompressionWindowOffer(t *testing.T) {
	tests := []struct {
		opts   duplex.CompressionOptions
		offer  string
		answer string
	}{
		{duplex.CompressionOptions{}, "permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10"},
		{duplex.CompressionOptions{ClientMaxWindowBits: 10, ServerMaxWindowBits: 9},
			"permessage-deflate; server_max_window_bits=9; client_max_window_bits=10", "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10"},
		{duplex.CompressionOptions{ClientMaxWindowBits: 30}, "permessage-deflate; client_max_window_bits=15", "permessage-deflate; client_max_window_bits=12"},
	}
	for _, tt := range tests {
		var offer string
		url, peers := testkit.ServeHandshake(t, func(r *http.Request) string {
			offer = r.Header.Get("Sec-WebSocket-Extensions")
			return testkit.Response101(r.Header.Get("Sec-WebSocket-Key"), "Sec-WebSocket-Extensions: "+tt.answer)
		})
		ctx, cancel := testkit.Context(t, 1)
		c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{Compression: &tt.opts})
		cancel()
		if err != nil {
			t.Fatalf("Dial with %+v: %v", tt.opts, err)
		}
		if offer != tt.offer {
			t.Errorf("Dial with %+v offered %q; want %q", tt.opts, offer, tt.offer)
		}
		if got := c.Extensions(); got != tt.answer {
			t.Errorf("Extensions() = %q; want %q", got, tt.answer)
		}
		c.CloseNow()
		(<-peers).Close()
	}
}

// TestCompressionWindowRoundTrip sends similar messages both ways between
// a library client and server that agreed on small windows with context
// takeover. Each side inflates strictly (a distance past the window is
// 1007), so an echo that comes back whole shows both compressors keep to
// the window the other side set.
func TestCompressionWindowRoundTrip(t *testing.T) {
	for _, bits := range []int{8, 10, 12} {
		t.Run(fmt.Sprintf("bits%d", bits), func(t *testing.T) {
			url := echoServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{
				ClientMaxWindowBits: bits, ServerMaxWindowBits: bits,
			}})
			ctx, cancel := testkit.Context(t, 400<<10)
			defer cancel()
			c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{Compression: &duplex.CompressionOptions{}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			want := fmt.Sprintf("permessage-deflate; server_max_window_bits=%d; client_max_window_bits=%d", bits, bits)
			if got := c.Extensions(); got != want {
				t.Fatalf("Extensions() = %q; want %q", got, want)
			}
			for i := range 200 {
				// 1-5 KiB of JSON alike from one message to the next, so
				// that matches reach back across the window's edge.
				var b strings.Builder
				for j := range 10 + i%40 {
					fmt.Fprintf(&b, `{"seq":%d,"user":"user%d","text":"price update %d for room general"},`, i, j%7, (i*j)%97)
				}
				msg := []byte(b.String())
				if err := c.Write(ctx, duplex.MessageText, msg); err != nil {
					t.Fatalf("message %d: write: %v", i, err)
				}
				_, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: read: %v", i, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("message %d: echo differs", i)
				}
			}
		})
	}
}
