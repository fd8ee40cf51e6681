package duplex

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/duplexws/duplex/internal/wire"
)

// The opening handshake of RFC 6455 §1.2 (the §1.3 key and accept).
const (
	rfcRequest = "GET /chat HTTP/1.1\r\n" +
		"Host: server.example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Origin: http://example.com\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	rfcResponse = "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n\r\n"
	rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="
)

// hasTokenRef is hasToken written again without the library's helpers.
func hasTokenRef(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func FuzzCheckRequest(f *testing.F) {
	f.Add([]byte(rfcRequest), "chat", "*.example.com")
	f.Add([]byte(strings.Replace(rfcRequest, "GET", "POST", 1)), "", "")
	f.Add([]byte(strings.Replace(rfcRequest, "Connection: Upgrade", "Connection: keep-alive, Upgrade", 1)), "superchat,chat", "https://*")
	f.Add([]byte(strings.Replace(rfcRequest, "Version: 13", "Version: 8", 1)), "chat", "")
	f.Add([]byte(strings.Replace(rfcRequest, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", 1)), "", "")
	f.Add([]byte(strings.Replace(rfcRequest, "Origin: http://example.com", "Origin: http://server.example.com", 1)), "", "")
	f.Add([]byte(strings.Replace(rfcRequest, "HTTP/1.1", "HTTP/1.0", 1)), "", "[")
	f.Add([]byte(strings.Replace(rfcRequest, "Origin: http://example.com", "Origin: http://server.example.com\r\nOrigin: http://evil.example", 1)), "", "")
	f.Add([]byte(strings.Replace(rfcRequest, "\r\n\r\n", "\r\nContent-Length: 3\r\n\r\nabc", 1)), "", "https://*.example.com")
	f.Add([]byte(strings.Replace(rfcRequest, "\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1)), "", "")
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"+
		"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n"), "", "")
	f.Fuzz(func(t *testing.T, raw []byte, ours, pattern string) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		key, ref := checkRequest(r)
		if ref != nil {
			if key != "" || ref.status < 400 || ref.status > 499 || ref.reason == "" {
				t.Fatalf("checkRequest refused with key %q, %+v", key, ref)
			}
		} else {
			b, err := base64.StdEncoding.DecodeString(key)
			switch {
			case len(key) != 24 || err != nil || len(b) != 16:
				t.Fatalf("checkRequest accepted key %q: %d bytes, %v", key, len(b), err)
			case r.Method != http.MethodGet:
				t.Fatalf("checkRequest accepted method %q", r.Method)
			case !r.ProtoAtLeast(1, 1):
				t.Fatalf("checkRequest accepted %s", r.Proto)
			case !hasTokenRef(r.Header, "Connection", "upgrade") || !hasTokenRef(r.Header, "Upgrade", "websocket"):
				t.Fatalf("checkRequest accepted headers without upgrade tokens: %q", r.Header)
			case len(r.Header.Values("Sec-WebSocket-Key")) != 1:
				t.Fatalf("checkRequest accepted %d keys", len(r.Header.Values("Sec-WebSocket-Key")))
			case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
				t.Fatalf("checkRequest accepted a body (Content-Length %d, Transfer-Encoding %q)", r.ContentLength, r.TransferEncoding)
			}
		}

		patterns := strings.Split(pattern, ",")
		if ref := checkOrigin(r, patterns); ref != nil {
			if ref.status != http.StatusForbidden {
				t.Fatalf("checkOrigin refused with %+v", ref)
			}
			if o := r.Header.Values("Origin"); len(o) == 0 || len(o) == 1 && o[0] == "" {
				t.Fatalf("checkOrigin refused a request without Origin: %+v", ref)
			}
		} else if n := len(r.Header.Values("Origin")); n > 1 {
			t.Fatalf("checkOrigin accepted %d Origin headers", n)
		}

		offered := headerTokens(r.Header, "Sec-WebSocket-Protocol")
		server := strings.Split(ours, ",")
		if p := selectSubprotocol(r, server); p != "" {
			if !slices.Contains(server, p) || !slices.Contains(offered, p) {
				t.Fatalf("selectSubprotocol(offered %q, ours %q) = %q", offered, server, p)
			}
			// The server's preference order wins.
			for _, s := range server[:slices.Index(server, p)] {
				if slices.Contains(offered, s) {
					t.Fatalf("selectSubprotocol(offered %q, ours %q) = %q; %q comes first", offered, server, p, s)
				}
			}
		} else {
			for _, s := range server {
				if s != "" && slices.Contains(offered, s) {
					t.Fatalf("selectSubprotocol(offered %q, ours %q) = \"\"; both have %q", offered, server, s)
				}
			}
		}
	})
}

func FuzzCheckResponse(f *testing.F) {
	f.Add([]byte(rfcResponse), rfcKey, "chat,superchat")
	f.Add([]byte(rfcResponse), rfcKey, "superchat")
	f.Add([]byte(rfcResponse), "AAAAAAAAAAAAAAAAAAAAAA==", "chat")
	f.Add([]byte(strings.Replace(rfcResponse, "Upgrade: websocket", "Upgrade: h2c", 1)), rfcKey, "chat")
	f.Add([]byte(strings.Replace(rfcResponse, "Connection: Upgrade", "Connection: close", 1)), rfcKey, "chat")
	f.Add([]byte(strings.Replace(rfcResponse, "Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat", 1)), rfcKey, "chat")
	f.Add([]byte(strings.Replace(rfcResponse, "Sec-WebSocket-Protocol: chat\r\n", "", 1)), rfcKey, "")
	f.Fuzz(func(t *testing.T, raw []byte, key, protocols string) {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			return
		}
		offered := strings.Split(protocols, ",")
		if checkResponse(resp, key, offered) != nil {
			return
		}
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
			t.Fatalf("checkResponse accepted Sec-WebSocket-Accept %q for key %q; want %q", got, key, want)
		}
		if !hasTokenRef(resp.Header, "Connection", "upgrade") || !hasTokenRef(resp.Header, "Upgrade", "websocket") {
			t.Fatalf("checkResponse accepted headers without upgrade tokens: %q", resp.Header)
		}
		if got := resp.Header.Values("Sec-WebSocket-Protocol"); len(got) > 1 || len(got) == 1 && !slices.Contains(offered, got[0]) {
			t.Fatalf("checkResponse accepted subprotocol %q; offered %q", got, offered)
		}
	})
}

// byteTransport is a transport whose peer sent exactly the bytes of r,
// then closed, and whose reads return at most chunk bytes (0: no bound);
// what the Conn writes is dropped.
type byteTransport struct {
	r     *bytes.Reader
	chunk int
}

func (t byteTransport) Read(p []byte) (int, error) {
	if t.chunk > 0 && len(p) > t.chunk {
		p = p[:t.chunk]
	}
	return t.r.Read(p)
}

func (t byteTransport) Write(p []byte) (int, error)      { return len(p), nil }
func (t byteTransport) Close() error                     { return nil }
func (t byteTransport) SetReadDeadline(time.Time) error  { return nil }
func (t byteTransport) SetWriteDeadline(time.Time) error { return nil }

// fuzzReadLimit keeps the memory a fuzzed Conn may use small.
const fuzzReadLimit = 1 << 10

// frames concatenates wire vectors written in hex with spaces.
func frames(vectors ...string) []byte {
	var b []byte
	for _, v := range vectors {
		p, err := hex.DecodeString(strings.ReplaceAll(v, " ", ""))
		if err != nil {
			panic(err)
		}
		b = append(b, p...)
	}
	return b
}

// readFramesSeeds are streams from a client (masked); the fuzz target also
// reads each as a client would, where masked frames are the violation.
var readFramesSeeds = [][]byte{
	// RFC 6455 §5.7: masked "Hello", then a masked close 1000.
	frames("81 85 37fa213d 7f9f4d5158", "88 82 00000000 03e8"),
	// Fragmented "Hello" with a ping between the fragments, then a close
	// without a code.
	frames("01 83 00000000 48656c", "89 85 37fa213d 7f9f4d5158", "80 82 00000000 6c6f", "88 80 00000000"),
	// Unmasked frames of §5.7, as a server sends them.
	frames("81 05 48656c6c6f", "01 03 48656c", "80 02 6c6f", "89 05 48656c6c6f", "8a 05 48656c6c6f"),
	// 256-byte binary message with a 16-bit length.
	append(frames("82 fe 0100 00000000"), make([]byte, 256)...),
	// Over the read limit.
	append(frames("82 fe 0401 00000000"), make([]byte, 1025)...),
	// Invalid UTF-8 split across fragments, and truncated.
	frames("01 81 00000000 e2", "80 81 00000000 28"),
	frames("81 84 00000000 f09f98"),
	// Close with a reason that is not UTF-8, and with a code never sent.
	frames("88 83 00000000 03e8ff"),
	frames("88 82 00000000 03ed"),
	// Reserved opcode, RSV bits, fragmented ping, non-minimal length.
	frames("83 80 00000000"),
	frames("c1 80 00000000"),
	frames("09 80 00000000"),
	frames("82 fe 0005 00000000 0102030405"),
	// Continuation with nothing to continue; new message inside another.
	frames("80 80 00000000"),
	frames("01 81 00000000 61", "81 81 00000000 61"),
	// A long control frame.
	frames("89 fe 007e 00000000"),
	{},
}

func FuzzReadFrames(f *testing.F) {
	for _, s := range readFramesSeeds {
		f.Add(s, false, uint16(0))
		f.Add(s, true, uint16(1))
		f.Add(s, false, uint16(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, client bool, chunk uint16) {
		want := readFramesRef(stream, client, fuzzReadLimit)

		// The engine alone, then driven by Conn (and, in FuzzEventFrames,
		// by the event loop): the same messages and ending.
		if got, gotEnd := readThroughEngine(stream, client, int(chunk), fuzzReadLimit); !slices.Equal(got, want.msgs) || gotEnd != want.end {
			t.Fatalf("stream % x (client %v, pieces of %d):\nengine gave %q, then %v (sent %v)\nwant        %q, then %v (sent %v)",
				stream, client, chunk, got, gotEnd.code, gotEnd.sent, want.msgs, want.end.code, want.end.sent)
		}

		c := newConn(connConfig{
			tr:        byteTransport{bytes.NewReader(stream), int(chunk)},
			client:    client,
			readLimit: fuzzReadLimit,
		})
		ctx := context.Background()
		var got []refMessage
		var err error
		// Every message takes at least two bytes of the stream, so a Conn
		// that keeps returning messages past that is looping.
		for i := 0; ; i++ {
			if i > len(stream)/2+1 {
				t.Fatalf("Read returned %d messages from %d bytes", i, len(stream))
			}
			var typ MessageType
			var p []byte
			typ, p, err = c.Read(ctx)
			if err != nil {
				break
			}
			if len(p) > fuzzReadLimit {
				t.Fatalf("Read returned %d bytes; the read limit is %d", len(p), fuzzReadLimit)
			}
			if typ == MessageText && !utf8.Valid(p) {
				t.Fatalf("Read returned invalid UTF-8 text %q", p)
			}
			got = append(got, refMessage{typ, string(p)})
		}

		var ce *CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("Read error %v (%T) is not a *CloseError", err, err)
		}
		if ce.Sent {
			if !slices.Contains([]StatusCode{StatusProtocolError, StatusInvalidFramePayloadData, StatusMessageTooBig}, ce.Code) {
				t.Fatalf("Read failed the connection with %v; want 1002, 1007 or 1009", ce)
			}
		} else if ce.Code != StatusAbnormalClosure && ce.Code != StatusNoStatusReceived && !wire.ValidCloseCode(uint16(ce.Code)) {
			t.Fatalf("Read reports the peer closed with %v, a code no peer may send", ce)
		}
		if _, _, again := c.Read(ctx); again != error(ce) {
			t.Fatalf("Read after %v = %v; want the same *CloseError", ce, again)
		}

		// The same outcome as the reference reader of RFC 6455.
		gotEnd := refEnd{ce.Code, ce.Sent}
		if !slices.Equal(got, want.msgs) || gotEnd != want.end {
			t.Fatalf("stream % x (client %v, reads of %d):\nRead gave %q, then %v (sent %v)\nwant       %q, then %v (sent %v)",
				stream, client, chunk, got, gotEnd.code, gotEnd.sent, want.msgs, want.end.code, want.end.sent)
		}
	})
}

type refMessage struct {
	typ MessageType
	p   string
}

func (m refMessage) String() string { return fmt.Sprintf("%v %q", m.typ, m.p) }

type refEnd struct {
	code StatusCode
	sent bool
}

type refResult struct {
	msgs []refMessage
	end  refEnd
}

// readFramesRef reads stream the way RFC 6455 §5-7 says an endpoint
// without extensions must, in one pass over the bytes: the messages it
// delivers and how the connection ends. It checks each frame header
// before its payload, and text as far as the bytes have come.
func readFramesRef(stream []byte, client bool, limit int64) refResult {
	var res refResult
	fail := func(code StatusCode) refResult {
		res.end = refEnd{code, true}
		return res
	}
	lost := func() refResult {
		res.end = refEnd{StatusAbnormalClosure, false}
		return res
	}
	var (
		op   wire.Opcode // of the message in progress, 0 if none
		text []byte      // payload of the message in progress
	)
	for {
		if len(stream) < 2 || len(stream) < wire.HeaderSize(stream[1]) {
			return lost()
		}
		h, n, err := wire.Parse(stream)
		if err != nil {
			return fail(StatusProtocolError) // §5.2: lengths are minimal, 63 bits
		}
		stream = stream[n:]
		control := h.Opcode >= 8
		switch {
		case h.RSV != 0, h.Opcode.IsReserved(): // §5.2
			return fail(StatusProtocolError)
		case h.Masked == client: // §5.1
			return fail(StatusProtocolError)
		case control && (!h.Fin || h.Length > 125): // §5.5
			return fail(StatusProtocolError)
		case !control && h.Opcode == wire.OpContinuation && op == 0: // §5.4
			return fail(StatusProtocolError)
		case !control && h.Opcode != wire.OpContinuation && op != 0: // §5.4
			return fail(StatusProtocolError)
		case !control && h.Length > limit-int64(len(text)):
			return fail(StatusMessageTooBig)
		}
		avail := min(int64(len(stream)), h.Length)
		p := bytes.Clone(stream[:avail])
		stream = stream[avail:]
		if h.Masked {
			for i := range p {
				p[i] ^= h.Key[i%4]
			}
		}
		if control {
			if avail < h.Length {
				return lost()
			}
			if h.Opcode != wire.OpClose {
				continue // pings are answered, pongs ignored
			}
			code, _, err := wire.ParseClose(p)
			switch {
			case errors.Is(err, wire.ErrCloseReason): // §8.1
				return fail(StatusInvalidFramePayloadData)
			case err != nil: // §5.5.1, §7.4
				return fail(StatusProtocolError)
			}
			res.end = refEnd{StatusCode(code), false}
			return res
		}
		if h.Opcode != wire.OpContinuation {
			op = h.Opcode
		}
		text = append(text, p...)
		if op == wire.OpText && !validUTF8Prefix(text) { // §8.1
			return fail(StatusInvalidFramePayloadData)
		}
		if avail < h.Length {
			return lost()
		}
		if !h.Fin {
			continue
		}
		if op == wire.OpText && !utf8.Valid(text) {
			return fail(StatusInvalidFramePayloadData)
		}
		res.msgs = append(res.msgs, refMessage{MessageType(op), string(text)})
		op, text = 0, nil
	}
}

// validUTF8Prefix reports whether p is valid UTF-8 or valid up to a code
// point that is cut short but could still be completed.
func validUTF8Prefix(p []byte) bool {
	for k := 0; k <= 3 && k <= len(p); k++ {
		if !utf8.Valid(p[:len(p)-k]) {
			continue
		}
		if k == 0 {
			return true
		}
		// Only the byte after the lead has a narrowed range (RFC 3629
		// §4), so completing with one continuation byte c repeated
		// covers every case.
		for c := byte(0x80); c <= 0xbf; c++ {
			q := bytes.Clone(p[len(p)-k:])
			for len(q) < 4 && !utf8.FullRune(q) {
				q = append(q, c)
			}
			if utf8.Valid(q) && len(q) > k {
				return true
			}
		}
	}
	return false
}

// FuzzCheckRequestHTTP2 feeds checkRequestHTTP2 the method, :protocol and
// version header of an extended CONNECT (RFC 8441 §4): it accepts exactly
// CONNECT with :protocol websocket (any case) and one version 13.
func FuzzCheckRequestHTTP2(f *testing.F) {
	f.Add("CONNECT", "websocket", "13", false)
	f.Add("CONNECT", "WebSocket", " 13 ", false)
	f.Add("GET", "websocket", "13", false)
	f.Add("CONNECT", "", "13", false)
	f.Add("CONNECT", "websocket", "8", true)
	f.Add("CONNECT", "h2c", "13", false)
	f.Fuzz(func(t *testing.T, method, protocol, version string, twoVersions bool) {
		r := &http.Request{Method: method, Proto: "HTTP/2.0", ProtoMajor: 2, Header: http.Header{}}
		if protocol != "" {
			r.Header[":protocol"] = []string{protocol}
		}
		r.Header["Sec-Websocket-Version"] = []string{version}
		if twoVersions {
			r.Header["Sec-Websocket-Version"] = append(r.Header["Sec-Websocket-Version"], version)
		}
		ref := checkRequestHTTP2(r)
		want := method == http.MethodConnect && strings.EqualFold(protocol, "websocket") &&
			strings.TrimSpace(version) == "13" && !twoVersions
		if (ref == nil) != want {
			t.Fatalf("checkRequestHTTP2(%q, %q, %q, two=%v) = %+v; want accepted=%v", method, protocol, version, twoVersions, ref, want)
		}
		if ref != nil && (ref.status < 400 || ref.status > 499 || ref.reason == "") {
			t.Fatalf("refusal %+v", ref)
		}
	})
}

// The event loop's allocation-free check of a handshake request never
// accepts what net/http's parser and Accept's checks would refuse, and
// accepts with the same key. (It may pass any request on to them.)
func FuzzFastHandshake(f *testing.F) {
	plain := strings.Replace(strings.Replace(rfcRequest, "Origin: http://example.com\r\n", "", 1), "Sec-WebSocket-Protocol: chat, superchat\r\n", "", 1)
	f.Add([]byte(plain), false)
	f.Add([]byte(rfcRequest), true)
	f.Add([]byte(strings.Replace(plain, "/chat", "/chat?token=a%20b&x=1", 1)), false)
	f.Add([]byte(strings.Replace(plain, "Connection: Upgrade", "Connection: keep-alive,  UPGRADE ", 1)), false)
	f.Add([]byte(strings.Replace(plain, "Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n", 1)), false)
	f.Add([]byte(strings.Replace(plain, "Upgrade: websocket", "Upgrade: websocket\r\n\tx", 1)), false)
	f.Add([]byte(strings.ReplaceAll(plain, "\r\n", "\n")), false)
	f.Fuzz(func(t *testing.T, raw []byte, skipOrigin bool) {
		opts := &AcceptOptions{InsecureSkipOriginCheck: skipOrigin}
		fastKey, ok := fastHandshake(raw, opts)
		if !ok {
			return
		}
		end := requestEnd(raw)
		if end != len(raw) {
			t.Fatalf("fast path accepted %q, whose head ends at %d of %d", raw, end, len(raw))
		}
		r, ref := parseRequest(raw)
		if ref != nil {
			t.Fatalf("fast path accepted %q; net/http refuses it: %v", raw, ref.reason)
		}
		key, ref := checkRequest(r)
		if ref == nil && !skipOrigin {
			ref = checkOrigin(r, nil)
		}
		if ref != nil {
			t.Fatalf("fast path accepted %q; Accept refuses it with %d %s", raw, ref.status, ref.reason)
		}
		if key != string(fastKey) {
			t.Fatalf("fast path key %q; Accept's %q", fastKey, key)
		}
		if sub := selectSubprotocol(r, opts.Subprotocols); sub != "" {
			t.Fatalf("fast path skipped subprotocol %q", sub)
		}
	})
}
