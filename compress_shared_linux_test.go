//go:build linux

package duplex_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/duplexws/duplex/internal/wire"
)

// deflateRaw compresses p as one permessage-deflate message payload.
func deflateRaw(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflateRaw decompresses one message payload.
func inflateRaw(p []byte) ([]byte, error) {
	return io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
}

// TestNoTakeoverMessagesInterleaved: without context takeover a
// connection holds no decompressor between messages and takes one for
// each compressed message; many connections with messages in progress at
// once, each in three frames, and one that sends garbage, each get their
// own right (the others' echoes whole, garbage 1007), on the event loop
// and on Conn.
func TestNoTakeoverMessagesInterleaved(t *testing.T) {
	noTakeover := &duplex.CompressionOptions{NoContextTakeover: true}
	offer := http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}}
	servers := map[string]func(t *testing.T) string{
		"ServeEvents": func(t *testing.T) string {
			opts := &duplex.EventServerOptions{}
			opts.Compression = noTakeover
			addr, _, _ := serveEvents(t, opts)
			return "ws://" + addr + "/"
		},
		"Accept": func(t *testing.T) string {
			srv := testkit.Serve(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: noTakeover})
				if err != nil {
					return
				}
				defer c.CloseNow()
				for {
					typ, p, err := c.Read(context.Background())
					if err != nil {
						return
					}
					c.Write(context.Background(), typ, p)
				}
			})))
			return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			const conns, rounds = 8, 20
			peers := make([]*testkit.RawPeer, conns)
			for i := range peers {
				p, resp := testkit.DialRaw(t, url, offer)
				if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "server_no_context_takeover") {
					t.Fatalf("extensions %q", ext)
				}
				defer p.Close()
				peers[i] = p
			}
			for r := range rounds {
				msgs := make([][]byte, conns)
				parts := make([][3][]byte, conns)
				for i := range peers {
					msgs[i] = []byte(strings.Repeat(fmt.Sprintf("conn %d round %d; ", i, r), 20+i))
					z := deflateRaw(t, msgs[i])
					a, b := len(z)/3, 2*len(z)/3
					parts[i] = [3][]byte{z[:a], z[a:b], z[b:]}
				}
				// Every connection has its message in progress at once.
				for f := range 3 {
					for i, p := range peers {
						op, rsv := wire.OpContinuation, byte(0)
						if f == 0 {
							op, rsv = wire.OpText, wire.RSV1
						}
						if err := p.WriteFrame(f == 2, rsv, op, true, parts[i][f]); err != nil {
							t.Fatal(err)
						}
					}
				}
				for i, p := range peers {
					h, payload, err := p.ReadFrame()
					if err != nil {
						t.Fatalf("round %d conn %d: %v", r, i, err)
					}
					got := payload
					if h.RSV&wire.RSV1 != 0 {
						if got, err = inflateRaw(payload); err != nil {
							t.Fatalf("round %d conn %d: inflate the echo: %v", r, i, err)
						}
					}
					if !bytes.Equal(got, msgs[i]) {
						t.Fatalf("round %d conn %d: echo %.60q; want %.60q", r, i, got, msgs[i])
					}
				}
			}
			// Garbage on one connection fails that one only.
			bad := peers[0]
			bad.WriteFrame(false, wire.RSV1, wire.OpText, true, deflateRaw(t, []byte("a good start"))[:4])
			bad.WriteFrame(true, 0, wire.OpContinuation, true, []byte{0xff, 0xff, 0xff, 0xff})
			bad.ExpectClose(t, 1007)
			for i, p := range peers[1:] {
				msg := []byte(fmt.Sprintf("after the garbage, conn %d", i+1))
				p.WriteFrame(true, wire.RSV1, wire.OpText, true, deflateRaw(t, msg))
				h, payload, err := p.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				got := payload
				if h.RSV&wire.RSV1 != 0 {
					got, _ = inflateRaw(payload)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("conn %d after another's garbage: %q", i+1, got)
				}
			}
		})
	}
}
