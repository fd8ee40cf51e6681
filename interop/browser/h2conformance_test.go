package browser

// Conformance with RFC 6455 §5-7 over an HTTP/2 stream (RFC 8441): the
// checks of ../../conformance_test.go that make sense on a stream, run
// against duplex's server through an extended CONNECT stream opened with
// golang.org/x/net/http2's Transport directly. The request body is a pipe
// the test writes raw bytes to, so it can send frames no client library
// would; the response body is read frame by frame.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// h2ConfReadLimit is the server's read limit in these tests, small enough
// that the 1009 case fits in the stream's flow-control window.
const h2ConfReadLimit = 1024

// h2Peer is the client end of an extended CONNECT stream, driven by hand.
type h2Peer struct {
	pw     *io.PipeWriter
	body   io.ReadCloser
	frames chan h2Frame // closed when the stream's response body ends
	end    error        // why frames was closed: io.EOF at END_STREAM; set before the close
}

type h2Frame struct {
	h       wire.Header
	payload []byte
}

// dialH2Peer opens a WebSocket stream to url with an extended CONNECT
// request on tr (RFC 8441 §4) and checks the 200. The stream is torn down
// when the test ends.
func dialH2Peer(t *testing.T, tr *http2.Transport, url string) *h2Peer {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		cancel()
		t.Fatalf("extended CONNECT: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		cancel()
		resp.Body.Close()
		t.Fatalf("extended CONNECT answered %s over HTTP/%d; want 200 over HTTP/2", resp.Status, resp.ProtoMajor)
	}
	p := &h2Peer{pw: pw, body: resp.Body, frames: make(chan h2Frame, 16)}
	go p.readFrames()
	t.Cleanup(func() {
		pw.Close()
		resp.Body.Close()
		cancel()
		for range p.frames { // wait for readFrames to return
		}
	})
	return p
}

// readFrames decodes the server's frames, checking nothing but the
// length encoding, until the response body ends.
func (p *h2Peer) readFrames() {
	br := bufio.NewReader(p.body)
	var err error
	for {
		var hdr [wire.MaxHeaderSize]byte
		if _, err = io.ReadFull(br, hdr[:2]); err != nil {
			break
		}
		n := wire.HeaderSize(hdr[1])
		if _, err = io.ReadFull(br, hdr[2:n]); err != nil {
			err = fmt.Errorf("frame header cut short: %w", err)
			break
		}
		var h wire.Header
		if h, _, err = wire.Parse(hdr[:n]); err != nil {
			break
		}
		payload := make([]byte, h.Length)
		if _, err = io.ReadFull(br, payload); err != nil {
			err = fmt.Errorf("payload cut short: %w", err)
			break
		}
		if h.Masked {
			wire.Mask(h.Key, 0, payload)
		}
		p.frames <- h2Frame{h, payload}
	}
	p.end = err
	close(p.frames)
}

// send writes wire bytes (testkit.Hex notation) to the stream as they are.
func (p *h2Peer) send(t *testing.T, frames string) {
	t.Helper()
	if _, err := p.pw.Write(testkit.Hex(frames)); err != nil {
		t.Fatalf("writing %s: %v", frames, err)
	}
}

// expect reads frames until their bytes, unmasked and in hex, make up
// want, and compares.
func (p *h2Peer) expect(t *testing.T, want string) {
	t.Helper()
	want = strings.Join(strings.Fields(want), "")
	var got string
	for len(got) < len(want) {
		select {
		case f, ok := <-p.frames:
			if !ok {
				t.Fatalf("stream ended (%v) after %q; want %s", p.end, got, want)
			}
			if f.h.Masked {
				t.Errorf("server frame is masked; RFC 6455 §5.1: a server MUST NOT mask")
			}
			got += testkit.FrameHex(f.h, f.payload)
		case <-time.After(testkit.DefaultTimeout):
			t.Fatalf("got %q and then no frame for %v; want %s", got, testkit.DefaultTimeout, want)
		}
	}
	if got != want {
		t.Fatalf("got frames %s; want %s", got, want)
	}
}

// expectEnd waits for the response body to end cleanly (END_STREAM,
// which RFC 8441 §5 maps to the TCP close of RFC 6455) within
// testkit.CloseWait, as a server must close first (RFC 6455 §7.1.1).
func (p *h2Peer) expectEnd(t *testing.T) {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if ok {
			t.Fatalf("got frame %s after the close frame; nothing may follow it (RFC 6455 §5.5.1)", testkit.FrameHex(f.h, f.payload))
		}
		if !errors.Is(p.end, io.EOF) {
			t.Fatalf("stream ended with %v; want END_STREAM (io.EOF), not RST_STREAM (RFC 8441 §5)", p.end)
		}
	case <-time.After(testkit.CloseWait):
		t.Fatalf("stream still open %v after the close handshake; the server must end it first (RFC 6455 §7.1.1)", testkit.CloseWait)
	}
}

// Client frames below are masked with the key 00000000 unless they
// follow RFC 6455 §5.7's example: a zero key leaves the payload as it is,
// so the bytes read as the RFC writes unmasked frames, and it is a legal
// key. "88 02 03ea" is a close frame with code 1002 and no reason.
var h2ConformanceCases = []struct {
	name string
	send string            // what the client writes, as is
	want string            // the server's answer, unmasked notation
	code duplex.StatusCode // the server's close code; 0 when the exchange goes on
}{
	{name: "masked Hello echoed (§5.7)", send: "81 85 37fa213d 7f9f4d5158", want: "81 05 48656c6c6f"},
	{name: "fragmented text echoed whole (§5.4, §5.7)", send: "01 83 00000000 48656c  80 82 00000000 6c6f", want: "81 05 48656c6c6f"},
	{name: "ping answered with its payload (§5.5.2)", send: "89 85 00000000 48656c6c6f", want: "8a 05 48656c6c6f"},
	{
		name: "ping between fragments answered at once (§5.4)",
		send: "01 83 00000000 48656c  89 82 00000000 6869  80 82 00000000 6c6f",
		want: "8a 02 6869  81 05 48656c6c6f",
	},
	{name: "unsolicited pong ignored (§5.5.3)", send: "8a 80 00000000  81 81 00000000 21", want: "81 01 21"},
	{name: "close 1000 echoed (§5.5.1)", send: "88 86 00000000 03e8 62796521", want: "88 02 03e8", code: 1000},
	{name: "close without a code answered without one (§5.5.1)", send: "88 80 00000000", want: "88 00", code: 1005},

	{name: "unmasked client frame (§5.1)", send: "81 05 48656c6c6f", want: "88 02 03ea", code: 1002},
	{name: "reserved data opcode 0x3 (§5.2)", send: "83 80 00000000", want: "88 02 03ea", code: 1002},
	{name: "reserved control opcode 0xb (§5.2)", send: "8b 80 00000000", want: "88 02 03ea", code: 1002},
	{name: "RSV1 without an extension (§5.2)", send: "c1 85 00000000 48656c6c6f", want: "88 02 03ea", code: 1002},
	{name: "RSV2 (§5.2)", send: "a1 85 00000000 48656c6c6f", want: "88 02 03ea", code: 1002},
	{name: "RSV3 (§5.2)", send: "91 85 00000000 48656c6c6f", want: "88 02 03ea", code: 1002},
	{name: "fragmented ping (§5.5)", send: "09 80 00000000", want: "88 02 03ea", code: 1002},
	{name: "ping of 126 bytes (§5.5)", send: "89 fe 007e 00000000" + strings.Repeat("61", 126), want: "88 02 03ea", code: 1002},
	{name: "continuation without a message (§5.4)", send: "80 80 00000000", want: "88 02 03ea", code: 1002},
	{name: "text inside a fragmented message (§5.4)", send: "01 81 00000000 61  81 81 00000000 62", want: "88 02 03ea", code: 1002},
	{name: "close code 1005 on the wire (§7.4.1)", send: "88 82 00000000 03ed", want: "88 02 03ea", code: 1002},
	{name: "close payload of 1 byte (§5.5.1)", send: "88 81 00000000 03", want: "88 02 03ea", code: 1002},
	{name: "invalid UTF-8 text (§8.1)", send: "81 82 00000000 c328", want: "88 02 03ef", code: 1007},
	{name: "invalid UTF-8 across fragments (§8.1)", send: "01 81 00000000 c3  80 81 00000000 28", want: "88 02 03ef", code: 1007},
	{name: "invalid UTF-8 close reason (§8.1)", send: "88 84 00000000 03e8 c328", want: "88 02 03ef", code: 1007},
	{
		name: fmt.Sprintf("binary of %d bytes over a read limit of %d (§7.4.1)", h2ConfReadLimit+1, h2ConfReadLimit),
		send: "82 fe 0401 00000000" + strings.Repeat("00", h2ConfReadLimit+1),
		want: "88 02 03f1", code: 1009,
	},
}

// TestHTTP2Conformance runs each case on a server and a connection of its
// own, so the goroutine check at the end covers the stream's teardown on
// both sides.
func TestHTTP2Conformance(t *testing.T) {
	for _, tt := range h2ConformanceCases {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			srv := startH2Recorder(t, &duplex.AcceptOptions{ReadLimit: h2ConfReadLimit})
			tr := &http2.Transport{TLSClientConfig: srv.tls}
			t.Cleanup(tr.CloseIdleConnections)
			p := dialH2Peer(t, tr, srv.url)

			p.send(t, tt.send)
			p.expect(t, tt.want)
			if tt.code == 0 {
				// Still open: an echo goes through, then a normal close.
				p.send(t, "82 83 00000000 010203")
				p.expect(t, "82 03 010203")
				p.send(t, "88 82 00000000 03e8")
				p.expect(t, "88 02 03e8")
				p.expectEnd(t)
				tt.code = duplex.StatusNormalClosure
			} else {
				if !strings.HasPrefix(tt.send, "88") {
					// The server closed first: answer with its code, as a
					// conforming client would (RFC 6455 §5.5.1). The
					// server may have ended the stream already, which is
					// its right once it has sent its close frame.
					if _, err := p.pw.Write(testkit.Hex(fmt.Sprintf("88 82 00000000 %04x", uint16(tt.code)))); err != nil {
						t.Logf("answering the close frame: %v", err)
					}
				}
				p.expectEnd(t)
			}
			p.pw.Close() // END_STREAM on our side, after the server's

			recs, refused, _ := srv.wait(t)
			if len(refused) != 0 || len(recs) != 1 {
				t.Fatalf("server served %d sockets and refused %v; want one socket", len(recs), refused)
			}
			if got := recs[0].closeCode; got != tt.code {
				t.Errorf("server's Read ended with %v (code %d); want code %d", recs[0].closeErr, got, tt.code)
			}
		})
	}
}
