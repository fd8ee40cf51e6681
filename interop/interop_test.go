// Package interop runs duplex against WebSocket implementations nobody here
// wrote, in both directions: a peer's echo server with a duplex client, and
// duplex's echo server with a peer's client. The Go peers (gorilla, coder,
// gws) run in process; Node's ws and Python's websockets run as
// subprocesses started from ./node and ./python.
//
// Every echo server, ours and the peers', speaks the same small protocol
// (README.md): data messages come back unchanged, and text messages that
// start with "cmd:" ask the server to ping, to send a fragmented message,
// to close with a code, or to tell what close code it saw on another
// connection. That is how each side checks what the other observed.
//
// This is a nested module so the peers never reach the library's go.mod.
package interop

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// closeCodes are the codes an application may send (RFC 6455 §7.4.1 and
// the IANA registry), at both ends of the registered ranges.
var closeCodes = []duplex.StatusCode{
	1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
}

// closeReason is the reason sent with code; the peers' scripts build the
// same string. The check mark makes it multi-byte UTF-8.
func closeReason(code duplex.StatusCode) string {
	return fmt.Sprintf("reason %d ✓", uint16(code))
}

// message is one data message of an exchange.
type message struct {
	name string
	typ  duplex.MessageType
	p    []byte
}

func (m message) String() string {
	return fmt.Sprintf("%s (%v, %d bytes)", m.name, m.typ, len(m.p))
}

// big is the largest message, made once.
var big = sync.OnceValue(func() []byte {
	p := make([]byte, bigSize)
	rand.NewChaCha8([32]byte{1}).Read(p)
	return p
})

// bigSize is the size of the largest message of an exchange. Under the race
// detector a compressed 16 MiB message costs seconds, so the compression
// variants that test negotiation details rather than size send smallSize.
const (
	bigSize   = 16 << 20
	smallSize = 1 << 20
)

// dataMessages covers the message types, the empty message, the three
// encodings of the payload length (RFC 6455 §5.2: 7 bits, 16 bits at 126,
// 64 bits at 65536), multi-byte UTF-8 and a large message of size bytes
// (bigSize when 0).
func dataMessages(size int) []message {
	if size == 0 {
		size = bigSize
	}
	return []message{
		{"text", duplex.MessageText, []byte("hello, peer")},
		{"utf-8 text", duplex.MessageText, []byte("héllo wörld ✓ 🚀 日本語")},
		{"binary", duplex.MessageBinary, []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff}},
		{"empty text", duplex.MessageText, []byte{}},
		{"empty binary", duplex.MessageBinary, []byte{}},
		{"125 bytes", duplex.MessageBinary, pattern(125)},
		{"126 bytes", duplex.MessageBinary, pattern(126)},
		{"65535 bytes", duplex.MessageBinary, pattern(65535)},
		{"65536 bytes", duplex.MessageBinary, pattern(65536)},
		{"200 KiB text", duplex.MessageText, prose(200 << 10)},
		{"large binary", duplex.MessageBinary, big()[:size]},
	}
}

// pattern is the payload of "cmd:fragmented n", which every peer's
// script builds the same way: a 32-bit linear congruential generator from
// seed 1, one byte (bits 16-23) per step. It does not compress, so a
// compressed message still spans several frames, and a lost or repeated
// fragment shows.
func pattern(n int) []byte {
	p := make([]byte, n)
	x := uint32(1)
	for i := range p {
		x = x*1103515245 + 12345
		p[i] = byte(x >> 16)
	}
	return p
}

// fragText is n bytes of valid UTF-8 that compresses poorly: printable
// ASCII with a two-byte "é" now and then, so fragment boundaries fall
// inside characters.
func fragText(n int) []byte {
	p := make([]byte, 0, n)
	x := uint32(7)
	for len(p) < n-1 {
		x = x*1103515245 + 12345
		if r := x >> 16; r%16 == 0 {
			p = append(p, "é"...)
		} else {
			p = append(p, byte(' '+r%95))
		}
	}
	return p
}

var words = strings.Fields("the quick brown fox jumps over a lazy dog while duplex echoes frames ✓ über naïve café")

// prose is n bytes (or a few less) of compressible UTF-8 text.
func prose(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	var b bytes.Buffer
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		if b.Len()+len(w)+1 > n {
			break
		}
		b.WriteString(w)
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// burstMessages are n similar messages, as a chat or a feed sends: with
// context takeover each one compresses against the ones before it.
func burstMessages(n int) []message {
	r := rand.New(rand.NewPCG(42, 42))
	out := make([]message, n)
	for i := range out {
		body := fmt.Sprintf(`{"seq":%d,"user":"user-%d","channel":"general","text":%q,"tags":["interop","duplex"]}`,
			i, r.IntN(20), prose(50+r.IntN(1500)))
		typ := duplex.MessageText
		if i%7 == 3 {
			typ = duplex.MessageBinary
		}
		out[i] = message{fmt.Sprintf("burst %d", i), typ, []byte(body)}
	}
	return out
}

// fragmentedSize is the size of the message sent in fragments: larger than
// every peer's fragment size (gws sends 128 KiB segments).
const fragmentedSize = 300_000

// checkEcho compares a received message with the one sent.
func checkEcho(t *testing.T, want message, typ duplex.MessageType, got []byte) {
	t.Helper()
	if typ != want.typ || !bytes.Equal(got, want.p) {
		t.Fatalf("echo of %v = %v, %d bytes (first difference at %d)", want, typ, len(got), firstDiff(got, want.p))
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// parseCommand splits "cmd:close 1000 reason 1000 ✓" into "close" and its
// arguments.
func parseCommand(p []byte) (cmd, arg string, ok bool) {
	s, ok := strings.CutPrefix(string(p), "cmd:")
	if !ok {
		return "", "", false
	}
	cmd, arg, _ = strings.Cut(s, " ")
	return cmd, arg, true
}

// parseClose reads the arguments of "cmd:close": a code and a reason.
func parseClose(arg string) (duplex.StatusCode, string) {
	c, reason, _ := strings.Cut(arg, " ")
	n, _ := strconv.Atoi(c)
	return duplex.StatusCode(n), reason
}

// closeLog is what an echo server saw of each connection's end, by the id
// in the connection's path (/c/<id>). Servers record, and "cmd:closed <id>"
// reads, so a client can learn what its close looked like from the far
// side.
type closeLog struct {
	mu      sync.Mutex
	entries map[string]*closeEntry
}

type closeEntry struct {
	done chan struct{}
	seen string // set once, before done closes: "<code> <reason>" or "none: <why>"
}

func (l *closeLog) entry(id string) *closeEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = make(map[string]*closeEntry)
	}
	e := l.entries[id]
	if e == nil {
		e = &closeEntry{done: make(chan struct{})}
		l.entries[id] = e
	}
	return e
}

// record notes the close frame (code, reason) that ended connection id;
// code 0 means none was received, and why says what happened instead.
func (l *closeLog) record(id string, code int, reason string, why error) {
	e := l.entry(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-e.done:
		return // a second connection with the same id; the first one counts
	default:
	}
	if code != 0 {
		e.seen = fmt.Sprintf("%d %s", code, reason)
	} else {
		e.seen = fmt.Sprintf("none: %v", why)
	}
	close(e.done)
}

// wait answers "cmd:closed <id>".
func (l *closeLog) wait(id string) string {
	e := l.entry(id)
	select {
	case <-e.done:
		return e.seen
	case <-time.After(testkit.Timeout(0)):
		return "none: connection " + id + " has not ended"
	}
}

// connID is the id of a connection to an echo server: the path is /c/<id>.
func connID(r *http.Request) string {
	return strings.TrimPrefix(r.URL.Path, "/c/")
}

// wsURL turns an httptest server's URL into a ws:// one.
func wsURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http")
}

// deflateReady reports whether duplex negotiates permessage-deflate with
// itself. Until internal/deflate does, compression tests skip instead of
// failing, and light up without change when it lands.
var deflateReady = sync.OnceValue(func() bool {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
		if err == nil {
			c.CloseNow()
		}
	}))
	defer srv.Close() // the connection is hijacked: Close does not wait for it
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout(0))
	defer cancel()
	c, _, err := duplex.Dial(ctx, wsURL(srv.URL), &duplex.DialOptions{Compression: &duplex.CompressionOptions{}})
	if err != nil {
		return false
	}
	defer c.CloseNow()
	return strings.Contains(c.Extensions(), "permessage-deflate")
})

// noDeflate is called when a connection that offered permessage-deflate
// ended up without it. It skips while duplex cannot negotiate compression
// at all; after that, a peer configured to agree (expect) failing to is a
// bug, and any other decline is reported as a skip with the details.
func noDeflate(t *testing.T, expect bool, detail string) {
	t.Helper()
	if !deflateReady() {
		t.Skip("internal/deflate does not negotiate permessage-deflate yet (duplex declines even itself); " +
			"compression interop runs once it does")
	}
	if expect {
		t.Fatalf("permessage-deflate not negotiated although the peer is configured to accept it: %s", detail)
	}
	t.Skipf("permessage-deflate not negotiated with these peer settings: %s", detail)
}

// dialDuplex dials with a frame-counting transport. The connection is
// dropped when the test ends, before the servers started earlier close.
func dialDuplex(t *testing.T, url string, o duplex.DialOptions) (*duplex.Conn, *sniffConn) {
	t.Helper()
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	var sc *sniffConn
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc = newSniffConn(c)
		return sc, nil
	}
	c, _, err := duplex.Dial(ctx, url, &o)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, sc
}
