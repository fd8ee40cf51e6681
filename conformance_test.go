package duplex_test

// Conformance with RFC 6455 §5-7, checked on the wire. Each case runs the
// library in both roles against a testkit.RawPeer: as the server (Accept
// behind httptest) with the raw peer as the client, and as the client
// (Dial) against a raw server. The library side echoes every message, so
// a script of frames sent and frames expected back shows its behaviour
// byte for byte.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// role is the side the library plays in a conformance case.
type role int

const (
	asServer role = 1 << iota // Accept; the raw peer is the client and masks
	asClient                  // Dial; the raw peer is the server
	asBoth   = asServer | asClient
)

func (r role) String() string {
	if r == asServer {
		return "server"
	}
	return "client"
}

// confOptions are the options a case gives the library side.
type confOptions struct {
	readLimit    int64
	closeTimeout time.Duration
	deflate      bool // negotiate permessage-deflate (RFC 7692)
}

// confPair connects a library Conn playing r to a RawPeer. Both are closed
// when the test ends.
func confPair(t *testing.T, r role, o confOptions) (*duplex.Conn, *testkit.RawPeer) {
	t.Helper()
	var c *duplex.Conn
	var peer *testkit.RawPeer
	if r == asServer {
		opts := &duplex.AcceptOptions{ReadLimit: o.readLimit, CloseTimeout: o.closeTimeout}
		var offer http.Header
		if o.deflate {
			opts.Compression = &duplex.CompressionOptions{}
			offer = http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate"}}
		}
		conns := make(chan *duplex.Conn, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			c, err := duplex.Accept(w, req, opts)
			if err != nil {
				t.Errorf("Accept: %v", err)
				return
			}
			conns <- c
		}))
		t.Cleanup(srv.Close)
		var resp *http.Response
		peer, resp = testkit.DialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http"), offer)
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); o.deflate != strings.HasPrefix(ext, "permessage-deflate") {
			t.Fatalf("Sec-WebSocket-Extensions: %q; want permessage-deflate: %v", ext, o.deflate)
		}
		select {
		case c = <-conns:
		case <-time.After(5 * time.Second):
			t.Fatal("Accept did not return")
		}
	} else {
		opts := &duplex.DialOptions{ReadLimit: o.readLimit, CloseTimeout: o.closeTimeout}
		var ext []string
		if o.deflate {
			opts.Compression = &duplex.CompressionOptions{}
			ext = append(ext, "Sec-WebSocket-Extensions: permessage-deflate")
		}
		url, peers := testkit.ServeHandshake(t, func(r *http.Request) string {
			return testkit.Response101(r.Header.Get("Sec-WebSocket-Key"), ext...)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		c, _, err = duplex.Dial(ctx, url, opts)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if o.deflate != strings.HasPrefix(c.Extensions(), "permessage-deflate") {
			t.Fatalf("Extensions() = %q; want permessage-deflate: %v", c.Extensions(), o.deflate)
		}
		select {
		case peer = <-peers:
		case <-time.After(5 * time.Second):
			t.Fatal("raw server got no connection")
		}
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, peer
}

// ending is how an echo loop stopped: the error of the Read that ended it
// and of one Write tried after that.
type ending struct{ readErr, writeErr error }

// confEcho echoes every message on c until a Read fails.
func confEcho(c *duplex.Conn) <-chan ending {
	ch := make(chan ending, 1)
	go func() {
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				ch <- ending{err, c.Write(ctx, duplex.MessageText, []byte("after the end"))}
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				ch <- ending{nil, err}
				return
			}
		}
	}()
	return ch
}

// rep repeats a hex byte n times, for long payloads in tables.
func rep(hexByte string, n int) string { return strings.Repeat(hexByte, n) }

// conformanceCases are scripts in the notation of RFC 6455 §5.7:
//
//	"> 81 05 48656c6c6f"  the peer sends this frame (a client peer masks it
//	                      with a random key; see testkit.RawPeer.Send)
//	"! 81 85 37fa213d …"  the peer sends these bytes exactly, masked or not
//	"< 81 05 48656c6c6f"  the library sends this frame next (unmasked here;
//	                      a client's mask is checked and removed)
//
// After the script the peer expects a close frame with code close; with
// close 0 the connection must still work, and the peer closes it with 1000.
// peerCode says the close code is the peer's own, echoed back.
var conformanceCases = []struct {
	name     string
	roles    role
	script   []string
	close    uint16
	peerCode bool
	limit    int64 // read limit; 0 for the default
	deflate  bool  // permessage-deflate negotiated
}{
	// RFC 6455 §5.7 examples.
	{name: "§5.7 unmasked Hello", roles: asBoth, script: []string{"> 81 05 48656c6c6f", "< 81 05 48656c6c6f"}},
	{name: "§5.7 masked Hello", roles: asServer, script: []string{"! 81 85 37fa213d 7f9f4d5158", "< 81 05 48656c6c6f"}},
	{name: "§5.7 fragmented Hello", roles: asBoth, script: []string{"> 01 03 48656c", "> 80 02 6c6f", "< 81 05 48656c6c6f"}},
	{name: "§5.7 ping answered by pong with the same payload", roles: asBoth, script: []string{"> 89 05 48656c6c6f", "< 8a 05 48656c6c6f"}},
	{name: "§5.7 256 bytes, 16-bit length", roles: asBoth, script: []string{"> 82 7e 0100" + rep("ab", 256), "< 82 7e 0100" + rep("ab", 256)}},
	{name: "§5.7 64 KiB, 64-bit length", roles: asBoth, script: []string{"> 82 7f 0000000000010000" + rep("cd", 65536), "< 82 7f 0000000000010000" + rep("cd", 65536)}},
	{name: "empty text", roles: asBoth, script: []string{"> 81 00", "< 81 00"}},
	{name: "empty ping", roles: asBoth, script: []string{"> 89 00", "< 8a 00"}},
	{name: "ping of 125 bytes", roles: asBoth, script: []string{"> 89 7d" + rep("11", 125), "< 8a 7d" + rep("11", 125)}},
	{name: "ping between fragments answered at once", roles: asBoth, script: []string{
		"> 01 03 48656c",
		"> 89 02 6869",
		"< 8a 02 6869", // before the message is finished
		"> 80 02 6c6f",
		"< 81 05 48656c6c6f",
	}},
	{name: "unsolicited pong ignored", roles: asBoth, script: []string{"> 8a 02 6869", "> 81 02 6869", "< 81 02 6869"}},
	{name: "pong between fragments ignored", roles: asBoth, script: []string{"> 02 01 01", "> 8a 00", "> 80 01 02", "< 82 02 0102"}},
	{name: "empty fragments", roles: asBoth, script: []string{"> 01 00", "> 00 00", "> 80 00", "< 81 00"}},

	// 1002: framing errors (§5.2, §5.4, §5.5).
	{name: "RSV1 without extension", roles: asBoth, script: []string{"> c1 05 48656c6c6f"}, close: 1002},
	{name: "RSV2", roles: asBoth, script: []string{"> a1 05 48656c6c6f"}, close: 1002},
	{name: "RSV3", roles: asBoth, script: []string{"> 91 05 48656c6c6f"}, close: 1002},
	{name: "RSV1 on a ping", roles: asBoth, script: []string{"> c9 00"}, close: 1002},
	{name: "reserved opcode 3", roles: asBoth, script: []string{"> 83 00"}, close: 1002},
	{name: "reserved opcode 4", roles: asBoth, script: []string{"> 84 00"}, close: 1002},
	{name: "reserved opcode 5", roles: asBoth, script: []string{"> 85 00"}, close: 1002},
	{name: "reserved opcode 6", roles: asBoth, script: []string{"> 86 00"}, close: 1002},
	{name: "reserved opcode 7", roles: asBoth, script: []string{"> 87 02 6869"}, close: 1002},
	{name: "reserved opcode B", roles: asBoth, script: []string{"> 8b 00"}, close: 1002},
	{name: "reserved opcode C", roles: asBoth, script: []string{"> 8c 00"}, close: 1002},
	{name: "reserved opcode D", roles: asBoth, script: []string{"> 8d 00"}, close: 1002},
	{name: "reserved opcode E", roles: asBoth, script: []string{"> 8e 00"}, close: 1002},
	{name: "reserved opcode F", roles: asBoth, script: []string{"> 8f 02 6869"}, close: 1002},
	{name: "reserved opcode inside a fragmented message", roles: asBoth, script: []string{"> 01 01 48", "> 03 00"}, close: 1002},
	{name: "fragmented ping", roles: asBoth, script: []string{"> 09 02 6869", "> 80 00"}, close: 1002},
	{name: "ping of 126 bytes", roles: asBoth, script: []string{"> 89 7e 007e" + rep("11", 126)}, close: 1002},
	{name: "close of 126 bytes", roles: asBoth, script: []string{"> 88 7e 007e 03e8" + rep("61", 124)}, close: 1002},
	{name: "continuation without a start", roles: asBoth, script: []string{"> 80 02 6c6f"}, close: 1002},
	{name: "text frame inside a fragmented message", roles: asBoth, script: []string{"> 01 03 48656c", "> 81 02 6c6f"}, close: 1002},
	{name: "binary frame inside a fragmented message", roles: asBoth, script: []string{"> 01 03 48656c", "> 02 02 6c6f"}, close: 1002},
	{name: "64-bit length with the top bit set", roles: asBoth, script: []string{"> 82 7f 8000000000000000"}, close: 1002},
	{name: "16-bit length not minimal", roles: asBoth, script: []string{"> 82 7e 0005 48656c6c6f"}, close: 1002},
	{name: "unmasked frame to the server", roles: asServer, script: []string{"! 81 05 48656c6c6f"}, close: 1002},
	{name: "masked frame to the client", roles: asClient, script: []string{"! 81 85 37fa213d 7f9f4d5158"}, close: 1002},

	// 1002: close frames (§5.5.1, §7.4).
	{name: "close with a 1-byte payload", roles: asBoth, script: []string{"> 88 01 03"}, close: 1002},
	{name: "close code 0", roles: asBoth, script: []string{"> 88 02 0000"}, close: 1002},
	{name: "close code 999", roles: asBoth, script: []string{"> 88 02 03e7"}, close: 1002},
	{name: "close code 1004", roles: asBoth, script: []string{"> 88 02 03ec"}, close: 1002},
	{name: "close code 1005", roles: asBoth, script: []string{"> 88 02 03ed"}, close: 1002},
	{name: "close code 1006", roles: asBoth, script: []string{"> 88 02 03ee"}, close: 1002},
	{name: "close code 1015", roles: asBoth, script: []string{"> 88 02 03f7"}, close: 1002},
	{name: "close code 1016", roles: asBoth, script: []string{"> 88 02 03f8"}, close: 1002},
	{name: "close code 1100", roles: asBoth, script: []string{"> 88 02 044c"}, close: 1002},
	{name: "close code 2000", roles: asBoth, script: []string{"> 88 02 07d0"}, close: 1002},
	{name: "close code 2999", roles: asBoth, script: []string{"> 88 02 0bb7"}, close: 1002},
	{name: "close code 5000", roles: asBoth, script: []string{"> 88 02 1388"}, close: 1002},
	{name: "close code 65535", roles: asBoth, script: []string{"> 88 02 ffff"}, close: 1002},

	// Close codes a peer may send are echoed back (§5.5.1).
	{name: "close 1000", roles: asBoth, script: []string{"> 88 02 03e8"}, close: 1000, peerCode: true},
	{name: "close 1000 with a reason", roles: asBoth, script: []string{"> 88 05 03e8 627965"}, close: 1000, peerCode: true},
	{name: "close 1001", roles: asBoth, script: []string{"> 88 02 03e9"}, close: 1001, peerCode: true},
	{name: "close 1002", roles: asBoth, script: []string{"> 88 02 03ea"}, close: 1002, peerCode: true},
	{name: "close 1003", roles: asBoth, script: []string{"> 88 02 03eb"}, close: 1003, peerCode: true},
	{name: "close 1007", roles: asBoth, script: []string{"> 88 02 03ef"}, close: 1007, peerCode: true},
	{name: "close 1008", roles: asBoth, script: []string{"> 88 02 03f0"}, close: 1008, peerCode: true},
	{name: "close 1009", roles: asBoth, script: []string{"> 88 02 03f1"}, close: 1009, peerCode: true},
	{name: "close 1010", roles: asBoth, script: []string{"> 88 02 03f2"}, close: 1010, peerCode: true},
	{name: "close 1011", roles: asBoth, script: []string{"> 88 02 03f3"}, close: 1011, peerCode: true},
	{name: "close 1012", roles: asBoth, script: []string{"> 88 02 03f4"}, close: 1012, peerCode: true},
	{name: "close 1013", roles: asBoth, script: []string{"> 88 02 03f5"}, close: 1013, peerCode: true},
	{name: "close 1014", roles: asBoth, script: []string{"> 88 02 03f6"}, close: 1014, peerCode: true},
	{name: "close 3000", roles: asBoth, script: []string{"> 88 02 0bb8"}, close: 3000, peerCode: true},
	{name: "close 4999", roles: asBoth, script: []string{"> 88 02 1387"}, close: 4999, peerCode: true},
	{name: "close without a code", roles: asBoth, script: []string{"> 88 00"}, close: 1005, peerCode: true},
	{name: "close between fragments", roles: asBoth, script: []string{"> 01 03 48656c", "> 88 02 03e8"}, close: 1000, peerCode: true},

	// 1007: invalid UTF-8 (§8.1), found as soon as the byte arrives.
	{name: "invalid UTF-8 text", roles: asBoth, script: []string{"> 81 01 ff"}, close: 1007},
	{name: "UTF-16 surrogate in text", roles: asBoth, script: []string{"> 81 03 eda080"}, close: 1007},
	{name: "overlong slash in text", roles: asBoth, script: []string{"> 81 02 c0af"}, close: 1007},
	{name: "code point above U+10FFFF", roles: asBoth, script: []string{"> 81 04 f4908080"}, close: 1007},
	{name: "text ends inside a code point", roles: asBoth, script: []string{"> 81 02 e282"}, close: 1007},
	{name: "fragmented text ends inside a code point", roles: asBoth, script: []string{"> 01 01 e2", "> 80 01 82"}, close: 1007},
	// The final fragment is never sent: the close must come first.
	{name: "invalid UTF-8 in the first fragment", roles: asBoth, script: []string{"> 01 03 48ff6c"}, close: 1007},
	{name: "invalid UTF-8 in a middle fragment", roles: asBoth, script: []string{"> 01 02 4865", "> 00 02 6cff"}, close: 1007},
	// Only 4 of the 10 announced bytes are sent.
	{name: "invalid UTF-8 in the first half of a frame", roles: asBoth, script: []string{"> 81 0a 48656cff"}, close: 1007},
	{name: "invalid UTF-8 in a close reason", roles: asBoth, script: []string{"> 88 04 03e8 ceff"}, close: 1007},
	{name: "code point split across fragments", roles: asBoth, script: []string{"> 01 01 e2", "> 00 01 82", "> 80 01 ac", "< 81 03 e282ac"}},
	{name: "4-byte code point split 2+2", roles: asBoth, script: []string{"> 01 03 41f09f", "> 80 02 9880", "< 81 05 41f09f9880"}},
	{name: "valid UTF-8 close reason", roles: asBoth, script: []string{"> 88 05 03e8 e282ac"}, close: 1000, peerCode: true},

	// 1009: read limit (1024 here), enforced on the header alone.
	{name: "message at the limit", roles: asBoth, limit: 1024, script: []string{"> 82 7e 0400" + rep("00", 1024), "< 82 7e 0400" + rep("00", 1024)}},
	{name: "frame one byte over the limit", roles: asBoth, limit: 1024, script: []string{"> 82 7e 0401"}, close: 1009},
	{name: "header announcing 4 GiB, no payload", roles: asBoth, limit: 1024, script: []string{"> 82 7f 0000000100000000"}, close: 1009},
	{name: "fragments summing over the limit", roles: asBoth, limit: 1024, script: []string{
		"> 02 7e 0200" + rep("00", 512),
		"> 00 7e 0200" + rep("00", 512),
		"> 80 01 00",
	}, close: 1009},
	{name: "control frames do not count toward the limit", roles: asBoth, limit: 1024, script: []string{
		"> 02 7e 0400" + rep("00", 1024),
		"> 89 7d" + rep("00", 125),
		"< 8a 7d" + rep("00", 125),
		"> 80 00",
		"< 82 7e 0400" + rep("00", 1024),
	}},

	// permessage-deflate (RFC 7692): RSV1 marks the first frame of a
	// compressed message, and nothing else. Echoes of short messages go
	// out uncompressed (below the 128-byte threshold).
	{name: "RFC 7692 §7.2.3.1 compressed Hello", roles: asBoth, deflate: true, script: []string{"> c1 07 f248cdc9c90700", "< 81 05 48656c6c6f"}},
	{name: "RFC 7692 §7.2.3.1 compressed Hello in two fragments", roles: asBoth, deflate: true, script: []string{"> 41 03 f248cd", "> 80 04 c9c90700", "< 81 05 48656c6c6f"}},
	{name: "RFC 7692 §7.2.3.2 second Hello refers to the first", roles: asBoth, deflate: true, script: []string{
		"> c1 07 f248cdc9c90700", "< 81 05 48656c6c6f",
		"> c1 05 f200110000", "< 81 05 48656c6c6f",
	}},
	{name: "RFC 7692 §7.2.3.3 stored block", roles: asBoth, deflate: true, script: []string{"> c1 0b 0005 00faff 48656c6c6f 00", "< 81 05 48656c6c6f"}},
	{name: "uncompressed message with deflate on", roles: asBoth, deflate: true, script: []string{"> 81 05 48656c6c6f", "< 81 05 48656c6c6f"}},
	{name: "ping between compressed fragments", roles: asBoth, deflate: true, script: []string{"> 41 03 f248cd", "> 89 00", "< 8a 00", "> 80 04 c9c90700", "< 81 05 48656c6c6f"}},
	{name: "RSV1 on a continuation frame", roles: asBoth, deflate: true, script: []string{"> 41 03 f248cd", "> c0 04 c9c90700"}, close: 1002},
	{name: "RSV1 on a ping with deflate on", roles: asBoth, deflate: true, script: []string{"> c9 00"}, close: 1002},
	{name: "RSV2 with deflate on", roles: asBoth, deflate: true, script: []string{"> a1 05 48656c6c6f"}, close: 1002},
	// BFINAL 1, BTYPE 11: a reserved block type.
	{name: "corrupt deflate data", roles: asBoth, deflate: true, script: []string{"> c1 01 07"}, close: 1007},
	// Deflate's worst expansion is under limit/64 + 1 KiB: a compressed
	// message longer than the limit plus that on the wire is refused at
	// its header, before its payload, by every driver (issue 12).
	{name: "compressed frame too long to fit the limit, refused at its header", roles: asServer, deflate: true, limit: 1024, script: []string{"! c2 fe 0811 00000000"}, close: 1009},
	{name: "compressed frame too long to fit the limit, refused at its header (client)", roles: asClient, deflate: true, limit: 1024, script: []string{"! c2 7e 0811"}, close: 1009},
	{name: "compressed text inflating to invalid UTF-8", roles: asBoth, deflate: true, script: []string{"> c1 03 fa0f00"}, close: 1007},
	// 2048 zeros deflate to 13 bytes; the limit counts inflated bytes.
	{name: "compressed message inflating past the limit", roles: asBoth, deflate: true, limit: 1024, script: []string{"> c2 " + deflateHex(make([]byte, 2048))}, close: 1009},
	// The echo is compressed, in bytes that depend on the compressor, so
	// only the absence of a 1009 is checked (by the close that follows).
	{name: "compressed message inflating to the limit", roles: asBoth, deflate: true, limit: 1024, script: []string{"> c2 " + deflateHex(make([]byte, 1024))}},
}

// deflateHex is the RFC 7692 payload of p as a lone message: raw DEFLATE,
// flushed, without the final 00 00 ff ff, at the library's default level.
func deflateHex(p []byte) string {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(p)
	fw.Flush()
	out := bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
	return fmt.Sprintf("%02x %x", len(out), out)
}

// confDriver runs the library side of a conformance case one way: it
// connects it, playing r, to a RawPeer and echoes every message it gets.
// end reports how the echo ended, as confEcho does.
type confDriver struct {
	name  string
	roles role // the roles it can play
	// shared: the driver starts goroutines that outlive a connection (the
	// event loop's), so it is not checked for leaks per case.
	shared bool
	start  func(t *testing.T, r role, o confOptions) (peer *testkit.RawPeer, end <-chan ending)
}

// confDrivers are the ways to run a connection, all on one engine: a Conn
// read by a goroutine; on Linux also a Conn detached to the event loop
// and a connection that ServeEvents accepted (event_test.go,
// serve_event_test.go). Every conformance case runs in each, and must
// give the same frames and close codes (issue 12).
var confDrivers = []confDriver{{
	name:  "conn",
	roles: asBoth,
	start: func(t *testing.T, r role, o confOptions) (*testkit.RawPeer, <-chan ending) {
		c, peer := confPair(t, r, o)
		return peer, confEcho(c)
	},
}}

func TestConformance(t *testing.T) {
	for _, d := range confDrivers {
		for _, tt := range conformanceCases {
			for _, r := range []role{asServer, asClient} {
				if tt.roles&d.roles&r == 0 {
					continue
				}
				t.Run(d.name+"/"+r.String()+"/"+tt.name, func(t *testing.T) {
					if !d.shared {
						testkit.CheckNoGoroutineLeak(t)
					}
					peer, end := d.start(t, r, confOptions{readLimit: tt.limit, deflate: tt.deflate})
					playCase(t, r, peer, end, tt.script, tt.close, tt.peerCode)
				})
			}
		}
	}
}

// playCase plays a conformance script, then closes as conformanceCases
// says, and checks how the library side's echo ended.
func playCase(t *testing.T, r role, peer *testkit.RawPeer, end <-chan ending, script []string, close uint16, peerCode bool) {
	t.Helper()
	runScript(t, r, peer, script)
	want := close
	if want == 0 {
		if err := peer.Send("88 02 03e8"); err != nil {
			t.Fatal(err)
		}
		want = 1000
	}
	peer.ExpectClose(t, want)
	checkEnding(t, end, duplex.StatusCode(want), close == 0 || peerCode)
}

// runScript plays a conformance script (see conformanceCases).
func runScript(t *testing.T, r role, peer *testkit.RawPeer, script []string) {
	t.Helper()
	for _, line := range script {
		dir, frame := line[:2], line[2:]
		var err error
		switch dir {
		case "> ":
			err = peer.Send(frame)
		case "! ":
			err = peer.WriteRaw(frame)
		case "< ":
			err = expectFrame(peer, r, frame)
		default:
			t.Fatalf("bad script line %q", line)
		}
		if err != nil {
			t.Fatalf("%s: %v", short(line), err)
		}
	}
}

// expectFrame reads one frame and compares it, unmasked, with want. The
// library as client must mask it (§5.3), as server must not.
func expectFrame(peer *testkit.RawPeer, r role, want string) error {
	h, p, err := peer.ReadFrame()
	if err != nil {
		return err
	}
	if h.Masked != (r == asClient) {
		return fmt.Errorf("frame from the %v has mask bit %v", r, h.Masked)
	}
	got := testkit.FrameHex(h, p)
	if w := strings.Join(strings.Fields(want), ""); got != w {
		return fmt.Errorf("got frame %s; want %s", short(got), short(w))
	}
	return nil
}

// short keeps long frames readable in failure messages.
func short(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d chars)", s[:80], len(s))
	}
	return s
}

// checkEnding checks that the echo loop ended with a CloseError carrying
// code, from both Read and a later Write. byPeer: the peer chose the code.
func checkEnding(t *testing.T, end <-chan ending, code duplex.StatusCode, byPeer bool) {
	t.Helper()
	var e ending
	select {
	case e = <-end:
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after the close")
	}
	for _, err := range []struct {
		op  string
		err error
	}{{"Read", e.readErr}, {"Write", e.writeErr}} {
		var ce *duplex.CloseError
		if !errors.As(err.err, &ce) {
			t.Errorf("%s error = %v; want a *duplex.CloseError", err.op, err.err)
			continue
		}
		if ce.Code != code || duplex.CloseStatus(err.err) != code {
			t.Errorf("%s error = %v (code %d); want code %d", err.op, err.err, ce.Code, code)
		}
		if ce.Sent == byPeer {
			t.Errorf("%s error = %v with Sent %v; want Sent %v", err.op, err.err, ce.Sent, !byPeer)
		}
	}
}

// The close handshake started by the library: the peer gets the code and
// reason, Close returns nil once the peer answers, and every later call
// returns the CloseError.
func TestCloseHandshake(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			c, peer := confPair(t, r, confOptions{})
			closed := make(chan error, 1)
			go func() { closed <- c.Close(duplex.StatusGoingAway, "bye") }()
			if reason := peer.ExpectClose(t, 1001); reason != "bye" {
				t.Errorf("close reason = %q; want %q", reason, "bye")
			}
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("Close = %v; want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return after the peer answered")
			}
			ctx := context.Background()
			_, _, rerr := c.Read(ctx)
			werr := c.Write(ctx, duplex.MessageText, []byte("late"))
			for _, err := range []error{rerr, werr} {
				var ce *duplex.CloseError
				if !errors.As(err, &ce) || ce.Code != duplex.StatusGoingAway || !ce.Sent {
					t.Errorf("after Close: %v; want a CloseError with code 1001, Sent", err)
				}
				if got := duplex.CloseStatus(err); got != duplex.StatusGoingAway {
					t.Errorf("CloseStatus(%v) = %v; want 1001", err, got)
				}
			}
			if err := c.Close(duplex.StatusNormalClosure, ""); duplex.CloseStatus(err) != duplex.StatusGoingAway {
				t.Errorf("second Close = %v; want the first CloseError", err)
			}
		})
	}
}

// Close on a peer that never answers gives up after CloseTimeout, whether
// Close reads the connection itself or another goroutine is reading.
func TestCloseTimeout(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		for _, reading := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/reading=%v", r, reading), func(t *testing.T) {
				testkit.CheckNoGoroutineLeak(t)
				c, peer := confPair(t, r, confOptions{closeTimeout: 300 * time.Millisecond})
				if reading {
					confEcho(c)
				}
				closed := make(chan error, 1)
				start := time.Now()
				go func() { closed <- c.Close(duplex.StatusNormalClosure, "") }()
				h, p, err := peer.ReadFrame()
				if err != nil || h.Opcode != wire.OpClose || !bytes.Equal(p, []byte{0x03, 0xe8}) {
					t.Fatalf("ReadFrame = %+v % x, %v; want close 1000", h, p, err)
				}
				// No answer.
				select {
				case err := <-closed:
					t.Logf("Close returned after %v", time.Since(start))
					if !errors.Is(err, duplex.ErrCloseTimeout) {
						t.Errorf("Close = %v; want ErrCloseTimeout", err)
					}
					if duplex.CloseStatus(err) != duplex.StatusNormalClosure {
						t.Errorf("CloseStatus(%v) = %v; want 1000", err, duplex.CloseStatus(err))
					}
				case <-time.After(3 * time.Second):
					t.Fatal("Close did not return 3s after the close frame, with CloseTimeout 300ms")
				}
				peer.ExpectEOF(t, time.Second)
			})
		}
	}
}

// A Read whose context is cancelled while it waits for a message returns
// the context's error and leaves the connection working.
func TestReadContextCancel(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			c, peer := confPair(t, r, confOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			read := make(chan error, 1)
			go func() {
				_, _, err := c.Read(ctx)
				read <- err
			}()
			stop := time.AfterFunc(50*time.Millisecond, cancel) // let Read block first
			defer stop.Stop()
			select {
			case err := <-read:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Read = %v; want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Read did not return after its context was cancelled")
			}
			end := confEcho(c)
			runScript(t, r, peer, []string{"> 81 05 48656c6c6f", "< 81 05 48656c6c6f"})
			if err := peer.Send("88 02 03e8"); err != nil {
				t.Fatal(err)
			}
			peer.ExpectClose(t, 1000)
			checkEnding(t, end, duplex.StatusNormalClosure, true)
		})
	}
}

// Many goroutines write at once over one client Conn: on the wire every
// message arrives whole, its frames contiguous, and each writer's messages
// in order. Some messages are streamed with Writer over several frames.
func TestConcurrentWrites(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	const writers, perWriter = 20, 200
	c, peer := confPair(t, asClient, confOptions{})
	ctx := context.Background()
	werr := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				msg := concurrentMessage(w, i)
				if i%10 != 0 {
					if err := c.Write(ctx, duplex.MessageBinary, msg); err != nil {
						werr <- err
						return
					}
					continue
				}
				mw, err := c.Writer(ctx, duplex.MessageBinary)
				if err != nil {
					werr <- err
					return
				}
				for len(msg) > 0 {
					n := min(7000, len(msg))
					mw.Write(msg[:n])
					msg = msg[n:]
				}
				if err := mw.Close(); err != nil {
					werr <- err
					return
				}
			}
		}()
	}

	next := make([]int, writers) // next sequence number of each writer
	keys := make(map[[4]byte]bool)
	var msg []byte
	inMessage := false
	multiFrame := 0
	for got := 0; got < writers*perWriter; {
		h, p, err := peer.ReadFrame()
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if !h.Masked {
			t.Fatalf("after %d messages: unmasked frame from the client", got)
		}
		keys[h.Key] = true
		switch {
		case h.Opcode == wire.OpBinary && !inMessage:
			msg, inMessage = p, true
		case h.Opcode == wire.OpContinuation && inMessage:
			msg = append(msg, p...)
			multiFrame++
		default:
			t.Fatalf("after %d messages: frame %v (fin %v) with a message in progress: %v", got, h.Opcode, h.Fin, inMessage)
		}
		if !h.Fin {
			continue
		}
		inMessage = false
		got++
		w, i := int(binary.BigEndian.Uint32(msg)), int(binary.BigEndian.Uint32(msg[4:]))
		if w >= writers || i != next[w] {
			t.Fatalf("message %d from writer %d; want writer < %d and message %d", i, w, writers, next[w])
		}
		next[w]++
		if want := concurrentMessage(w, i); !bytes.Equal(msg, want) {
			t.Fatalf("message %d of writer %d: %d bytes differ from the %d written", i, w, len(msg), len(want))
		}
	}
	// §5.3: a fresh key for every frame. A few repeats among thousands of
	// random keys are possible; a fixed or counting key is not.
	if len(keys) < writers*perWriter/2 {
		t.Errorf("%d distinct masking keys in %d messages; want a fresh random key per frame", len(keys), writers*perWriter)
	}
	if multiFrame == 0 {
		t.Error("no message spanned several frames; the test does not check interleaving")
	}
	wg.Wait()
	close(werr)
	for err := range werr {
		t.Errorf("write: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close(duplex.StatusNormalClosure, "") }()
	peer.ExpectClose(t, 1000)
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
}

// concurrentMessage is message i of writer w: both numbers, then a byte
// pattern of both. Every tenth is 40000 bytes, several frames long.
func concurrentMessage(w, i int) []byte {
	n := 8 + (i*37)%300
	if i%10 == 0 {
		n = 40000
	}
	p := make([]byte, n)
	binary.BigEndian.PutUint32(p, uint32(w))
	binary.BigEndian.PutUint32(p[4:], uint32(i))
	for k := 8; k < n; k++ {
		p[k] = byte(w*31 + i + k)
	}
	return p
}

// Connections between the library's own client and server leave no
// goroutine behind, whichever way they end: a close handshake from either
// side, a protocol error, or the transport dropped.
func TestNoGoroutineLeak(t *testing.T) {
	ctx := context.Background()
	ends := []struct {
		name string
		end  func(t *testing.T, client *duplex.Conn, server *duplex.Conn)
	}{
		{"client closes", func(t *testing.T, cl, _ *duplex.Conn) {
			if err := cl.Close(duplex.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close = %v", err)
			}
		}},
		{"server closes", func(t *testing.T, cl, srv *duplex.Conn) {
			if err := srv.Close(duplex.StatusGoingAway, ""); err != nil {
				t.Errorf("Close = %v", err)
			}
		}},
		{"client drops", func(t *testing.T, cl, _ *duplex.Conn) { cl.CloseNow() }},
		{"server drops", func(t *testing.T, _, srv *duplex.Conn) { srv.CloseNow() }},
	}
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			conns := make(chan *duplex.Conn, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := duplex.Accept(w, r, nil)
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				conns <- c
			}))
			t.Cleanup(srv.Close)
			cl, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			sc := <-conns
			// The server echoes; the client writes, reads and pings.
			serverEnd := confEcho(sc)
			if err := cl.Write(ctx, duplex.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, p, err := cl.Read(ctx); err != nil || string(p) != "hi" {
				t.Fatalf("Read = %q, %v", p, err)
			}
			clientRead := make(chan error, 1)
			go func() {
				_, _, err := cl.Read(ctx)
				clientRead <- err
			}()
			if _, err := cl.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tt.end(t, cl, sc)
			for _, ch := range []<-chan error{clientRead, errOf(serverEnd)} {
				select {
				case err := <-ch:
					if duplex.CloseStatus(err) == 0 {
						t.Errorf("Read after the end = %v; want a CloseError", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Read did not return after the connection ended")
				}
			}
		})
	}
}

func errOf(end <-chan ending) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- (<-end).readErr }()
	return ch
}

// A message the peer sends right behind its handshake, in the same TCP
// segment, is not lost.
func TestFrameRightAfterHandshake(t *testing.T) {
	url, peers := testkit.ServeHandshake(t, func(r *http.Request) string {
		return testkit.Response101(r.Header.Get("Sec-WebSocket-Key")) + string(testkit.Hex("81 05 48656c6c6f"))
	})
	c, _, err := duplex.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	<-peers
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, p, err := c.Read(ctx); err != nil || string(p) != "Hello" {
		t.Fatalf("Read = %q, %v; want Hello", p, err)
	}
}

// When the server fails a connection (here: a message over its read
// limit) it sends its close frame and closes TCP at once (RFC 6455 §7.1.1:
// "when a server is instructed to _Close the WebSocket Connection_ it
// SHOULD initiate a TCP Close immediately"), without the application's
// help: Read has returned a CloseError saying the connection ended. The
// library's own client waits for exactly that TCP close, so it must see
// the end well within the default close timeout of 5 s, not after it.
func TestServerFailureEndsPromptly(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	conns := make(chan *duplex.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{ReadLimit: 16})
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		conns <- c
		if _, _, err := c.Read(context.Background()); duplex.CloseStatus(err) != duplex.StatusMessageTooBig {
			t.Errorf("server Read = %v; want a CloseError with code 1009", err)
		}
		// The handler returns without CloseNow: the connection has ended.
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	defer func() { (<-conns).CloseNow() }()
	if err := c.Write(ctx, duplex.MessageBinary, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := c.Read(ctx)
		read <- err
	}()
	select {
	case err := <-read:
		if duplex.CloseStatus(err) != duplex.StatusMessageTooBig {
			t.Errorf("client Read = %v; want a CloseError with code 1009", err)
		}
		t.Logf("client saw the end after %v", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("client Read still waiting 2s after the server failed the connection: the server has not closed TCP")
	}
}

// The peer's code and reason reach the application: Read returns them in
// a CloseError with Sent false.
func TestPeerCloseReason(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			c, peer := confPair(t, r, confOptions{})
			end := confEcho(c)
			if err := peer.Send("88 05 03e9 627965"); err != nil { // 1001 "bye"
				t.Fatal(err)
			}
			peer.ExpectClose(t, 1001)
			var e ending
			select {
			case e = <-end:
			case <-time.After(5 * time.Second):
				t.Fatal("Read did not return after the close")
			}
			var ce *duplex.CloseError
			if !errors.As(e.readErr, &ce) || ce.Code != duplex.StatusGoingAway || ce.Reason != "bye" || ce.Sent {
				t.Errorf("Read = %#v; want CloseError{Code: 1001, Reason: \"bye\", Sent: false}", e.readErr)
			}
		})
	}
}

// Bytes a client sends right behind its request, in the same segment,
// reach the Conn: RFC 6455 §4.1 tells clients to wait for the response,
// but the HTTP server reads ahead, and Accept must hand on what it read
// rather than lose it or misread the stream.
func TestFrameRightAfterRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-confEcho(c)
	}))
	defer srv.Close()
	helloWithRequest(t, srv.Listener.Addr().String())
}

// helloWithRequest sends a handshake request and the §5.7 masked "Hello"
// in one write, and expects the 101 and then the echo.
func helloWithRequest(t *testing.T, addr string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(append([]byte(req), testkit.Hex("81 85 37fa213d 7f9f4d5158")...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v; want 101", resp, err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, testkit.Hex("81 05 48656c6c6f")) {
		t.Fatalf("echo = % x, %v; want 81 05 48656c6c6f", got, err)
	}
}

// Control frames may be injected in the middle of a fragmented message
// (RFC 6455 §5.4): a ping arriving while the library streams a message
// with Writer is answered between its frames, not after the message.
func TestPongInsideStreamedMessage(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			c, peer := confPair(t, r, confOptions{})
			ctx := context.Background()
			reading := make(chan error, 1)
			go func() {
				_, _, err := c.Read(ctx) // answers the ping, then sees the close
				reading <- err
			}()
			finish := make(chan struct{})
			written := make(chan error, 1)
			go func() {
				w, err := c.Writer(ctx, duplex.MessageBinary)
				if err != nil {
					written <- err
					return
				}
				// 32 KiB + 1 goes out as two full frames, the last byte
				// stays buffered until Close.
				w.Write(make([]byte, 32<<10+1))
				<-finish
				written <- w.Close()
			}()
			var got []string
			for len(got) < 2 {
				h, p, err := peer.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%x fin=%v len=%d", byte(h.Opcode), h.Fin, len(p)))
			}
			if err := peer.Send("89 02 6869"); err != nil {
				t.Fatal(err)
			}
			if err := expectFrame(peer, r, "8a 02 6869"); err != nil {
				close(finish)
				t.Fatalf("after frames %v, a ping: %v; want the pong before the message ends", got, err)
			}
			close(finish)
			if err := expectFrame(peer, r, "80 01 00"); err != nil {
				t.Fatalf("final frame: %v", err)
			}
			if err := <-written; err != nil {
				t.Fatalf("Writer.Close = %v", err)
			}
			if err := peer.Send("88 02 03e8"); err != nil {
				t.Fatal(err)
			}
			peer.ExpectClose(t, 1000)
			if err := <-reading; duplex.CloseStatus(err) != duplex.StatusNormalClosure {
				t.Errorf("Read = %v; want the peer's close 1000", err)
			}
		})
	}
}

// When the context of a Read ends after a message has begun to arrive,
// the stream cannot be resumed: the connection is closed with 1001 and the
// call returns the CloseError (see Conn).
func TestReadContextEndsMidMessage(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			testkit.CheckNoGoroutineLeak(t)
			c, peer := confPair(t, r, confOptions{})
			if err := peer.Send("01 03 48656c"); err != nil { // "Hel", and no more
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			read := make(chan error, 1)
			go func() {
				_, _, err := c.Read(ctx)
				read <- err
			}()
			peer.ExpectClose(t, 1001)
			select {
			case err := <-read:
				var ce *duplex.CloseError
				if !errors.As(err, &ce) || ce.Code != duplex.StatusGoingAway || !ce.Sent || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Read = %v; want a CloseError 1001, Sent, wrapping context.DeadlineExceeded", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Read did not return")
			}
		})
	}
}

// A Write whose context has already ended writes nothing and returns the
// context's error; the connection goes on (see Conn: a context bounds the
// call it is passed to).
func TestWriteCancelledContext(t *testing.T) {
	for _, r := range []role{asServer, asClient} {
		t.Run(r.String(), func(t *testing.T) {
			c, peer := confPair(t, r, confOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			// Repeated: the outcome must not depend on scheduling.
			for i := range 20 {
				if err := c.Write(ctx, duplex.MessageText, []byte("cancelled")); !errors.Is(err, context.Canceled) || duplex.CloseStatus(err) != 0 {
					t.Fatalf("attempt %d: Write with a cancelled context = %v; want context.Canceled, connection intact", i, err)
				}
			}
			if err := c.Write(context.Background(), duplex.MessageText, []byte("Hello")); err != nil {
				t.Fatalf("next Write = %v", err)
			}
			if err := expectFrame(peer, r, "81 05 48656c6c6f"); err != nil {
				t.Fatalf("first frame on the wire: %v; want only the Hello written with a live context", err)
			}
		})
	}
}

// A Write whose context ends while the message is stuck half sent (the
// peer reads nothing) returns within its deadline; the stream is broken,
// so the connection ends and later calls see the same CloseError.
func TestWriteContextEndsMidMessage(t *testing.T) {
	testkit.CheckNoGoroutineLeak(t)
	c, _ := confPair(t, asClient, confOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Write(ctx, duplex.MessageBinary, make([]byte, 64<<20)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked 5s after a 200ms deadline")
	}
	var ce *duplex.CloseError
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v; want a CloseError wrapping context.DeadlineExceeded", err)
	}
	t.Logf("Write = %v (code %d)", err, ce.Code)
	if err2 := c.Write(context.Background(), duplex.MessageText, []byte("x")); duplex.CloseStatus(err2) != ce.Code {
		t.Errorf("next Write = %v; want the same CloseError", err2)
	}
}

// RFC 6455 §7.1.1: after the close handshake the server closes the TCP
// connection first, and a client waits for that (for at most its close
// timeout) rather than close first. The program hears of the end at once
// in every driver; only the socket waits.
func TestClientLeavesTCPCloseToServer(t *testing.T) {
	for _, d := range confDrivers {
		if d.roles&asClient == 0 {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			peer, end := d.start(t, asClient, confOptions{})
			if err := peer.Send("88 02 03e8"); err != nil {
				t.Fatal(err)
			}
			// The answer, read by hand: ExpectClose, as a server, would
			// close TCP at once.
			if err := expectFrame(peer, asClient, "88 02 03e8"); err != nil {
				t.Fatal(err)
			}
			checkEnding(t, end, 1000, true)
			// A closed socket would be seen at once; an open one makes the
			// read wait out its deadline.
			peer.Timeout = 200 * time.Millisecond
			if b, err := peer.ReadN(1); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after the close handshake the client sent % x, %v; want the socket left open for the server to close", b, err)
			}
			peer.Close()
		})
	}
}
