package main

import (
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEcho(t *testing.T) {
	tests := []struct {
		name    string
		in, out string
		used    int
		need    int
		closing bool
	}{
		// RFC 6455 §5.7: a masked "Hello" comes back unmasked.
		{name: "masked Hello", in: "81 85 37fa213d 7f9f4d5158", out: "81 05 48656c6c6f", used: 11},
		{name: "two frames", in: "81 85 37fa213d 7f9f4d5158 82 82 00000000 0102", out: "81 05 48656c6c6f 82 02 0102", used: 19},
		{name: "ping becomes pong", in: "89 82 00000000 6869", out: "8a 02 6869", used: 8},
		{name: "pong dropped", in: "8a 80 00000000 81 81 00000000 41", out: "81 01 41", used: 13},
		{name: "close echoed", in: "88 82 00000000 03e8 81 80 00000000", out: "88 02 03e8", used: 8, closing: true},
		{name: "partial payload", in: "81 85 37fa213d 7f9f", out: "", used: 0, need: 11},
		{name: "partial header", in: "81", out: "", used: 0},
		{name: "16-bit length", in: "82 fe 0080 00000000" + strings.Repeat("ab", 128), out: "82 7e 0080" + strings.Repeat("ab", 128), used: 136},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, used, need, closing := echo(unhex(t, tt.in))
			if hex.EncodeToString(out) != hex.EncodeToString(unhex(t, tt.out)) || used != tt.used || need != tt.need || closing != tt.closing {
				t.Errorf("echo(%s) = %x, %d, %d, %v; want %s, %d, %d, %v", tt.in, out, used, need, closing, tt.out, tt.used, tt.need, tt.closing)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n\x81"
	resp, n, err := handshake(nil, []byte(req), true)
	if err != nil || n != len(req)-1 {
		t.Fatalf("handshake: n %d, err %v; want %d, nil", n, err, len(req)-1)
	}
	// RFC 6455 §1.3's example key and accept value.
	for _, want := range []string{"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "permessage-deflate"} {
		if !strings.Contains(string(resp), want) {
			t.Errorf("response lacks %q:\n%s", want, resp)
		}
	}
	if _, n, err := handshake(nil, []byte(req[:20]), false); n != 0 || err != nil {
		t.Errorf("partial head: n %d, err %v; want 0, nil", n, err)
	}
}
