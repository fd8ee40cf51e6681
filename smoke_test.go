package duplex_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

func echoServer(t *testing.T, opts *duplex.AcceptOptions) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	testkit.Serve(t, srv)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestEchoRoundTrip(t *testing.T) {
	url := echoServer(t, nil)
	ctx, cancel := testkit.Context(t, 2*(16<<20+70000)) // the messages below, both ways
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []struct {
		typ duplex.MessageType
		p   []byte
	}{
		{duplex.MessageText, []byte("hello")},
		{duplex.MessageBinary, []byte{}},
		{duplex.MessageText, []byte("héllo wörld ✓")},
		{duplex.MessageBinary, bytes.Repeat([]byte{0xab}, 70000)},
		{duplex.MessageBinary, bytes.Repeat([]byte("0123456789abcdef"), 1<<20)},
	}
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.p); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("echo of %d bytes %v = %d bytes %v", len(m.p), m.typ, len(p), typ)
		}
	}
	// Streamed message.
	w, err := c.Writer(ctx, duplex.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		w.Write([]byte("stream "))
	}
	w.Close()
	_, p, err := c.Read(ctx)
	if err != nil || len(p) != 5000*7 {
		t.Fatalf("stream echo: %d %v", len(p), err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		readErr <- err
	}()
	rtt, err := c.Ping(ctx)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	t.Logf("rtt %v", rtt)
	if err := c.Close(duplex.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	err = <-readErr
	var ce *duplex.CloseError
	if !errors.As(err, &ce) || ce.Code != duplex.StatusNormalClosure {
		t.Fatalf("read after close = %v", err)
	}
}

func TestReadIntoReusesBuffer(t *testing.T) {
	url := echoServer(t, nil)
	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	buf := make([]byte, 0, 4096)
	for _, msg := range []string{"first message", "second, longer message", "x"} {
		if err := c.Write(ctx, duplex.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, p, err := c.ReadInto(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(p) != msg {
			t.Fatalf("ReadInto = %q; want %q", p, msg)
		}
		if &p[:1][0] != &buf[:1][0] {
			t.Fatalf("ReadInto allocated a new buffer although %d bytes fit in cap %d", len(p), cap(buf))
		}
	}
}

func TestCompressedEcho(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts *duplex.CompressionOptions
	}{
		{"takeover", &duplex.CompressionOptions{}},
		{"no-takeover", &duplex.CompressionOptions{NoContextTakeover: true, Level: 6}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			url := echoServer(t, &duplex.AcceptOptions{Compression: mode.opts})
			ctx := context.Background()
			c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{Compression: mode.opts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if !strings.HasPrefix(c.Extensions(), "permessage-deflate") {
				t.Fatalf("Extensions() = %q; want permessage-deflate", c.Extensions())
			}
			for i := 0; i < 300; i++ {
				msg := []byte(strings.Repeat(fmt.Sprintf(`{"seq":%d,"text":"héllo"}`, i), 1+i%40))
				if err := c.Write(ctx, duplex.MessageText, msg); err != nil {
					t.Fatal(err)
				}
				_, p, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(p, msg) {
					t.Fatalf("message %d: echo differs", i)
				}
			}
		})
	}
}

func TestCompressedReadLimit(t *testing.T) {
	opts := &duplex.CompressionOptions{}
	url := echoServer(t, &duplex.AcceptOptions{Compression: opts, ReadLimit: 1 << 20})
	ctx, cancel := testkit.Context(t, 2*8<<20) // 8 MiB compressed, and inflated up to the limit
	defer cancel()
	c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{Compression: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// 8 MiB of zeros deflate to a few KiB: a bomb for a 1 MiB limit.
	if err := c.Write(ctx, duplex.MessageBinary, make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if got := duplex.CloseStatus(err); got != duplex.StatusMessageTooBig {
		t.Fatalf("Read after a decompression bomb = %v; want close %d", err, duplex.StatusMessageTooBig)
	}
}

// WriteCompressed overrides the threshold both ways; the peer sees RSV1
// exactly on the messages that were compressed (its echo proves it could
// read them either way).
func TestWriteCompressedOverride(t *testing.T) {
	opts := &duplex.CompressionOptions{Threshold: 1000}
	url := echoServer(t, &duplex.AcceptOptions{Compression: opts})
	ctx := context.Background()
	var frames []byte
	c, _, err := duplex.Dial(ctx, url, &duplex.DialOptions{
		Compression: opts,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return &sniffConn{Conn: nc, firstBytes: &frames}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	small, big := []byte("small but compressed"), bytes.Repeat([]byte("big but not "), 200)
	for _, m := range []struct {
		p        []byte
		compress bool
	}{{small, true}, {big, false}} {
		frames = frames[:0]
		if err := c.WriteCompressed(ctx, duplex.MessageText, m.p, m.compress); err != nil {
			t.Fatal(err)
		}
		if rsv1 := len(frames) > 0 && frames[0]&0x40 != 0; rsv1 != m.compress {
			t.Fatalf("%d-byte message: RSV1 %v; want %v", len(m.p), rsv1, m.compress)
		}
		if _, p, err := c.Read(ctx); err != nil || !bytes.Equal(p, m.p) {
			t.Fatalf("echo: %v", err)
		}
	}
}

// sniffConn records the first bytes of each Write after the handshake.
type sniffConn struct {
	net.Conn
	firstBytes *[]byte
	upgraded   bool
}

func (s *sniffConn) Write(p []byte) (int, error) {
	if s.upgraded && len(*s.firstBytes) == 0 && len(p) > 0 {
		*s.firstBytes = append(*s.firstBytes, p[0])
	}
	if bytes.HasPrefix(p, []byte("GET ")) {
		s.upgraded = true
	}
	return s.Conn.Write(p)
}
