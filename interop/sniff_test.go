package interop

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
)

// sniffConn counts the WebSocket frames that cross a connection in each
// direction, parsed from the bytes themselves. It lets a test see what the
// APIs hide: that a peer really fragmented or compressed a message, and
// that duplex did.
type sniffConn struct {
	net.Conn
	in, out frameCounter
}

func newSniffConn(c net.Conn) *sniffConn { return &sniffConn{Conn: c} }

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.feed(p[:n])
	return n, err
}

// tally is a count of frames by kind.
type tally struct {
	Frames        int // all frames
	Continuations int // opcode 0: the second and later fragments of a message
	Compressed    int // RSV1 set: the first frame of a compressed message (RFC 7692 §6)
	Pings, Pongs  int
}

// frameCounter parses one direction of a connection: the HTTP head, then
// frame headers, skipping payloads.
type frameCounter struct {
	mu     sync.Mutex
	inBody bool   // the HTTP head has been passed
	last4  uint32 // the last four bytes of the head, to find CRLF CRLF
	hdr    []byte // the frame header read so far
	skip   int64  // payload bytes of the current frame still to pass
	t      tally
}

func (f *frameCounter) tally() tally {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *frameCounter) feed(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(p) > 0 {
		if !f.inBody {
			b := p[0]
			p = p[1:]
			f.last4 = f.last4<<8 | uint32(b)
			f.inBody = f.last4 == 0x0d0a0d0a
			continue
		}
		if f.skip > 0 {
			n := min(int64(len(p)), f.skip)
			f.skip -= n
			p = p[n:]
			continue
		}
		f.hdr = append(f.hdr, p[0])
		p = p[1:]
		if len(f.hdr) < 2 {
			continue
		}
		// RFC 6455 §5.2: 2 bytes, then a 16- or 64-bit length, then the mask key.
		need := 2
		switch f.hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if f.hdr[1]&0x80 != 0 {
			need += 4
		}
		if len(f.hdr) < need {
			continue
		}
		var n int64
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			n = int64(binary.BigEndian.Uint16(f.hdr[2:]))
		case 127:
			n = int64(binary.BigEndian.Uint64(f.hdr[2:]))
		default:
			n = int64(l)
		}
		f.t.Frames++
		if f.hdr[0]&0x40 != 0 {
			f.t.Compressed++
		}
		switch f.hdr[0] & 0x0f {
		case 0x0:
			f.t.Continuations++
		case 0x9:
			f.t.Pings++
		case 0xa:
			f.t.Pongs++
		}
		f.skip = n
		f.hdr = f.hdr[:0]
	}
}

// sniffListener hands the HTTP server sniffing connections.
type sniffListener struct{ net.Listener }

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newSniffConn(c), nil
}

type sniffKey struct{}

// newSniffServer starts an httptest server whose handlers find their
// connection's counters with sniffed(r).
func newSniffServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = sniffListener{srv.Listener}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, sniffKey{}, c)
	}
	srv.Start()
	return srv
}

func sniffed(r *http.Request) *sniffConn {
	c, _ := r.Context().Value(sniffKey{}).(*sniffConn)
	return c
}
