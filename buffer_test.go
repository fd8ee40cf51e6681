package duplex

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// Holders of a write buffer reslice it (they append from [:0]); the pool
// must still hand every holder the full buffer, or a message Writer, which
// fills by length, would send empty frames without end.
func TestWriteBufferComesBackWhole(t *testing.T) {
	for i := 0; i < 64; i++ {
		bp := getWriteBuf()
		*bp = (*bp)[:0]
		putWriteBuf(bp)
	}
	for i := 0; i < 64; i++ {
		bp := getWriteBuf()
		if len(*bp) != writeBufSize {
			t.Fatalf("pool buffer has %d bytes; want %d", len(*bp), writeBufSize)
		}
		defer putWriteBuf(bp)
	}
}

// countingConn counts the bytes written to it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// A message streamed through Writer after event-mode writes (which borrow
// the same pool buffers) goes out in full buffers: its payload plus one
// header per 16 KiB, and arrives whole.
func TestWriterAfterEventWrites(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the event loop needs Linux")
	}
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Compression: &CompressionOptions{Level: 1}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if len(p) > 100_000 {
				got <- p
			}
		}
	}))
	defer testkit.CloseServer(t, srv)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	// Event-mode client writes, plain (masked into a pool buffer) and
	// compressed (compressed into one).
	c1, _, err := Dial(ctx, url, &DialOptions{Compression: &CompressionOptions{Level: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := c1.Detach(&EventHandler{})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.CloseNow()
	text := bytes.Repeat([]byte("event mode "), 50)
	for i := 0; i < 32; i++ {
		if err := ec.WriteCompressed(ctx, MessageText, text, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}

	var written atomic.Int64
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &written}, nil
	}
	c2, _, err := Dial(ctx, url, &DialOptions{NetDialContext: dialer})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	before := written.Load()
	msg := bytes.Repeat([]byte("0123456789"), 30_000)
	w, err := c2.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for p := msg; len(p) > 0; p = p[1000:] {
		if _, err := w.Write(p[:1000]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	frames := (len(msg) + writeBufSize - 1) / writeBufSize
	if n, limit := written.Load()-before, int64(len(msg)+frames*14); n > limit {
		t.Errorf("a %d-byte message took %d bytes on the wire; want at most %d (%d frames)", len(msg), n, limit, frames)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, msg) {
			t.Errorf("server read %d bytes; not the message written", len(p))
		}
	case <-ctx.Done():
		t.Fatal("the streamed message never arrived whole")
	}
}
