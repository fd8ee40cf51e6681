// Package testkit holds test-only helpers shared by the packages of this
// module: a raw WebSocket peer that can break the protocol on purpose, raw
// handshake helpers, a goroutine leak check and a skip for missing tools.
//
// It imports only internal/wire and the standard library, so tests of any
// package, including internal tests of package duplex, can use it.
package testkit

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// DefaultTimeout bounds every wait of a RawPeer: a frame that does not
// arrive in this time fails the read. It is 5 s times
// DUPLEX_TEST_SLOWDOWN (see Timeout).
var DefaultTimeout = Scale(5 * time.Second)

// CloseWait is how long ExpectClose waits for a server to close TCP after
// the close handshake. RFC 6455 §7.1.1: "when a server is instructed to
// Close the WebSocket Connection it SHOULD initiate a TCP Close
// immediately". It is shorter than the library's default close timeout,
// so a server that waits out its timeout instead is caught.
const CloseWait = 2 * time.Second

// RawPeer is one end of a WebSocket connection driven by hand: it writes
// whatever bytes a test gives it, legal or not, and reads frames without
// enforcing any rule, so a test can check what the library put on the wire.
//
// A RawPeer is used from one goroutine at a time.
type RawPeer struct {
	// Conn is the TCP connection, for tests that need it directly.
	Conn net.Conn
	// IsClient: this peer is the client, so Send masks its frames and
	// ExpectClose waits for the server to close TCP.
	IsClient bool
	// Timeout bounds each read; DefaultTimeout when zero.
	Timeout time.Duration
	// Request is the handshake request a ServeRaw peer answered, or nil.
	Request *http.Request

	br        *bufio.Reader
	closeSent bool // this peer has written a close frame
}

func newRawPeer(c net.Conn, br *bufio.Reader, client bool) *RawPeer {
	if br == nil {
		br = bufio.NewReader(c)
	}
	return &RawPeer{Conn: c, IsClient: client, br: br}
}

func (p *RawPeer) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

// Hex parses bytes written the way RFC 6455 §5.7 shows them, such as
// "81 85 37fa213d 7f9f4d5158". Spaces are ignored. It panics on bad input,
// which is always a typo in a test table.
func Hex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(fmt.Sprintf("testkit.Hex(%q): %v", s, err))
	}
	return b
}

// WriteRaw writes b as it is: a hex string for Hex, or a []byte.
func (p *RawPeer) WriteRaw(b any) error {
	var data []byte
	switch v := b.(type) {
	case string:
		data = Hex(v)
	case []byte:
		data = v
	default:
		panic(fmt.Sprintf("testkit: WriteRaw(%T): want string or []byte", b))
	}
	if len(data) > 0 && wire.Opcode(data[0]&0x0f) == wire.OpClose {
		p.closeSent = true
	}
	p.Conn.SetWriteDeadline(time.Now().Add(p.timeout()))
	_, err := p.Conn.Write(data)
	if err != nil {
		return fmt.Errorf("testkit: write %d bytes: %w", len(data), err)
	}
	return nil
}

// WriteFrame encodes one frame with wire.Append and writes it. A masked
// frame gets a fresh random key. Any combination is allowed: RSV bits,
// reserved opcodes, long control frames.
func (p *RawPeer) WriteFrame(fin bool, rsv byte, op wire.Opcode, masked bool, payload []byte) error {
	h := wire.Header{Fin: fin, RSV: rsv, Opcode: op, Masked: masked, Length: int64(len(payload))}
	body := append([]byte(nil), payload...)
	if masked {
		h.Key = randomKey()
		wire.Mask(h.Key, 0, body)
	}
	return p.WriteRaw(append(wire.Append(nil, h), body...))
}

// Send writes frames given in the unmasked notation of RFC 6455 §5.7
// ("81 05 48656c6c6f"), as a peer of its role would: a client peer sets
// the mask bit, inserts a fresh random key and masks the payload bytes
// present. A frame may be cut short (a header alone, half a payload);
// whatever is given is sent. A frame whose mask bit is already set is sent
// as it is.
func (p *RawPeer) Send(frames ...string) error {
	for _, f := range frames {
		b := Hex(f)
		if p.IsClient {
			b = maskFrame(b)
		}
		if err := p.WriteRaw(b); err != nil {
			return err
		}
	}
	return nil
}

// maskFrame returns the frame in b masked with a random key. The length
// field is copied, not interpreted, so illegal lengths survive.
func maskFrame(b []byte) []byte {
	if len(b) < 2 || b[1]&0x80 != 0 {
		return b
	}
	n := wire.HeaderSize(b[1]) // without the mask bit: no key yet
	if len(b) < n {
		return b
	}
	key := randomKey()
	out := append(append([]byte(nil), b[:n]...), key[:]...)
	out[1] |= 0x80
	payload := append([]byte(nil), b[n:]...)
	wire.Mask(key, 0, payload)
	return append(out, payload...)
}

func randomKey() [4]byte {
	var k [4]byte
	rand.Read(k[:])
	return k
}

// ReadN reads exactly n bytes, within the timeout.
func (p *RawPeer) ReadN(n int) ([]byte, error) {
	p.Conn.SetReadDeadline(time.Now().Add(p.timeout()))
	b := make([]byte, n)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return nil, fmt.Errorf("testkit: read %d bytes: %w", n, err)
	}
	return b, nil
}

// ReadFrame reads the next frame, within the timeout, and returns its
// header and its unmasked payload. It checks nothing but the encoding of
// the length, so a test sees exactly what the other side sent.
func (p *RawPeer) ReadFrame() (wire.Header, []byte, error) {
	p.Conn.SetReadDeadline(time.Now().Add(p.timeout()))
	var hdr [wire.MaxHeaderSize]byte
	if _, err := io.ReadFull(p.br, hdr[:2]); err != nil {
		return wire.Header{}, nil, fmt.Errorf("testkit: read frame header: %w", err)
	}
	n := wire.HeaderSize(hdr[1])
	if _, err := io.ReadFull(p.br, hdr[2:n]); err != nil {
		return wire.Header{}, nil, fmt.Errorf("testkit: read frame header: %w", err)
	}
	h, _, err := wire.Parse(hdr[:n])
	if err != nil {
		return h, nil, fmt.Errorf("testkit: frame header % x: %w", hdr[:n], err)
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		return h, nil, fmt.Errorf("testkit: read %d-byte payload: %w", h.Length, err)
	}
	if h.Masked {
		wire.Mask(h.Key, 0, payload)
	}
	return h, payload, nil
}

// FrameHex renders a frame in the unmasked notation Send takes, so a test
// can compare what it read with a table entry.
func FrameHex(h wire.Header, payload []byte) string {
	h.Masked = false
	return hex.EncodeToString(append(wire.Append(nil, h), payload...))
}

// ExpectClose reads frames, skipping data frames, pings and pongs, until a
// close frame, and checks its code (1005 stands for a close frame without
// a code). It returns the close reason. It then finishes the close
// handshake as a conforming peer would: it answers the close frame unless
// this peer sent one first, and then
//   - as the client, it waits up to CloseWait for the server to close TCP
//     (RFC 6455 §7.1.1: the server closes first) and fails if any byte
//     follows the close frame;
//   - as the server, it closes TCP itself.
func (p *RawPeer) ExpectClose(t testing.TB, want uint16) (reason string) {
	t.Helper()
	var code uint16
	for {
		h, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for close frame with code %d: %v", want, err)
		}
		if h.Opcode != wire.OpClose {
			continue
		}
		code = wire.NoStatus
		if len(payload) >= 2 {
			code = binary.BigEndian.Uint16(payload)
			reason = string(payload[2:])
		} else if len(payload) == 1 {
			t.Fatalf("close frame with a 1-byte payload % x", payload)
		}
		if code != want {
			t.Errorf("close code = %d (reason %q); want %d", code, reason, want)
		}
		break
	}
	if !p.closeSent {
		var reply []byte
		if code != wire.NoStatus {
			reply = wire.AppendClose(nil, code, "")
		}
		if err := p.WriteFrame(true, 0, wire.OpClose, p.IsClient, reply); err != nil {
			// The other side may have closed already; that is its right
			// once it has sent its close frame.
			t.Logf("answering close frame: %v", err)
		}
	}
	if !p.IsClient {
		p.Conn.Close()
		return reason
	}
	p.Conn.SetReadDeadline(time.Now().Add(CloseWait))
	b := make([]byte, 64)
	n, err := p.br.Read(b)
	switch {
	case n > 0:
		t.Errorf("got % x after the close frame; nothing may follow it (RFC 6455 §5.5.1)", b[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("TCP connection still open %v after the close handshake; the server must close it first (RFC 6455 §7.1.1)", CloseWait)
	default:
		t.Errorf("waiting for the server to close TCP: %v", err)
	}
	return reason
}

// ExpectEOF waits up to d for the other side to close TCP and fails if
// it sends any byte first.
func (p *RawPeer) ExpectEOF(t testing.TB, d time.Duration) {
	t.Helper()
	p.Conn.SetReadDeadline(time.Now().Add(d))
	var b [64]byte
	n, err := p.br.Read(b[:])
	switch {
	case n > 0:
		t.Errorf("got % x; want the connection closed", b[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("TCP connection still open %v later; want it closed by the other side", d)
	default:
		t.Errorf("waiting for the connection to close: %v", err)
	}
}

// Close closes the TCP connection.
func (p *RawPeer) Close() error { return p.Conn.Close() }

// track closes every peer a helper created when the test ends.
type track struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (tr *track) add(c net.Conn) {
	tr.mu.Lock()
	tr.conns = append(tr.conns, c)
	tr.mu.Unlock()
}

func (tr *track) closeAll() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.conns {
		c.Close()
	}
}
