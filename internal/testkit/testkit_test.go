package testkit

import (
	"bytes"
	"net"
	"testing"

	"github.com/duplexws/duplex/internal/wire"
)

func TestHex(t *testing.T) {
	if got, want := Hex("81 85 37fa213d 7f9f4d5158"), []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(got, want) {
		t.Errorf("Hex = % x; want % x", got, want)
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 §1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey = %q", got)
	}
}

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"GET / HTTP/1.1\nHost: x\n":           "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":   "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HTTP/1.1 401 No\nA: b\n\nbody\nmore": "HTTP/1.1 401 No\r\nA: b\r\n\r\nbody\nmore",
		"HTTP/1.1 101 S\r\n\r\n\x81\x02\r\n":  "HTTP/1.1 101 S\r\n\r\n\x81\x02\r\n",
	} {
		if got := crlf(in); got != want {
			t.Errorf("crlf(%q) = %q; want %q", in, got, want)
		}
	}
}

// A client peer masks what Send gets in RFC notation; the other end reads
// back the frame as written, whole or cut short.
func TestSendMasks(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	client, server := newRawPeer(a, nil, true), newRawPeer(b, nil, false)
	go func() {
		client.Send("81 05 48656c6c6f", "82 7e 0100"+string(bytes.Repeat([]byte("ab"), 256)))
		client.WriteFrame(false, wire.RSV1, 0x3, false, []byte("x"))
	}()
	h, p, err := server.ReadFrame()
	if err != nil || !h.Masked || FrameHex(h, p) != "810548656c6c6f" {
		t.Errorf("frame 1: %+v %q %v; want masked 81 05 Hello", h, p, err)
	}
	h, p, err = server.ReadFrame()
	if err != nil || !h.Masked || h.Length != 256 || !bytes.Equal(p, bytes.Repeat([]byte{0xab}, 256)) {
		t.Errorf("frame 2: %+v %v; want masked 256 × ab", h, err)
	}
	h, p, err = server.ReadFrame()
	if err != nil || h.Masked || FrameHex(h, p) != "430178" {
		t.Errorf("frame 3: %+v %q %v; want 43 01 78", h, p, err)
	}
	if !bytes.Equal(maskFrame(Hex("81 7e")), Hex("81 7e")) {
		t.Error("maskFrame changed a header cut inside its length")
	}
}
