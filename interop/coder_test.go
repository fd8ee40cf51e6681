package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// coderLimit lifts coder's 32 KiB default read limit above the 16 MiB
// message.
const coderLimit = 64 << 20

// TestCoder runs coder/websocket against duplex, both ways, without
// compression and with permessage-deflate in both of coder's modes.
func TestCoder(t *testing.T) {
	t.Parallel()
	t.Run("coder server, duplex client", func(t *testing.T) {
		runDuplexClient(t, startCoderServer(t, websocket.CompressionDisabled),
			clientRun{peerFragments: true, burst: 300, closeCodes: true})
	})
	t.Run("duplex server, coder client", func(t *testing.T) {
		runPeerClient(t, startDuplexServer(t, nil), coderDial(websocket.CompressionDisabled),
			peerRun{peerFragments: true, burst: 300, closeCodes: true})
	})
	modes := []struct {
		name  string
		mode  websocket.CompressionMode
		duplx duplex.CompressionOptions
		size  int
	}{
		{"context takeover", websocket.CompressionContextTakeover, duplex.CompressionOptions{}, bigSize},
		{"no context takeover", websocket.CompressionNoContextTakeover, duplex.CompressionOptions{NoContextTakeover: true}, smallSize},
	}
	for _, m := range modes {
		t.Run("deflate "+m.name+"/coder server, duplex client", func(t *testing.T) {
			runDuplexClient(t, startCoderServer(t, m.mode),
				clientRun{compression: &m.duplx, expectDeflate: true, peerFragments: true, burst: 300, bigSize: m.size})
		})
		t.Run("deflate "+m.name+"/duplex server, coder client", func(t *testing.T) {
			s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &m.duplx})
			runPeerClient(t, s, coderDial(m.mode), peerRun{compressed: true, peerFragments: true, burst: 300, bigSize: m.size})
		})
	}
}

// startCoderServer starts coder's echo server for the command protocol.
func startCoderServer(t *testing.T, mode websocket.CompressionMode) string {
	t.Helper()
	var closes closeLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := connID(r)
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(coderLimit)
		ctx := context.Background()
		var bg sync.WaitGroup
		defer bg.Wait()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					closes.record(id, int(ce.Code), ce.Reason, nil)
				} else {
					closes.record(id, 0, "", err)
				}
				return
			}
			cmd, arg, ok := parseCommand(p)
			if typ != websocket.MessageText || !ok {
				if err := c.Write(ctx, typ, p); err != nil {
					return
				}
				continue
			}
			switch cmd {
			case "ping":
				// coder's Ping needs this loop to go on reading.
				bg.Go(func() {
					ctx, cancel := context.WithTimeout(ctx, testkit.Timeout(0))
					defer cancel()
					reply := "pong"
					if err := c.Ping(ctx); err != nil {
						reply = "no pong: " + err.Error()
					}
					c.Write(ctx, websocket.MessageText, []byte(reply))
				})
			case "fragmented":
				n, _ := strconv.Atoi(arg)
				if err := coderFragmented(ctx, c, websocket.MessageBinary, pattern(n)); err != nil {
					return
				}
			case "close":
				code, reason := parseClose(arg)
				c.Close(websocket.StatusCode(code), reason)
				return
			case "closed":
				if err := c.Write(ctx, websocket.MessageText, []byte(closes.wait(arg))); err != nil {
					return
				}
			}
		}
	}))
	testkit.Serve(t, srv)
	return wsURL(srv.URL)
}

// coderFragmented streams p through coder's Writer: without compression
// each Write is a frame.
func coderFragmented(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, p []byte) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	return writeChunks(w, p, 1000)
}

type coderConn struct {
	t    *testing.T
	c    *websocket.Conn
	sent inflight
}

func coderDial(mode websocket.CompressionMode) peerDial {
	return func(t *testing.T, url string) (peerConn, error) {
		ctx, cancel := context.WithDeadline(context.Background(), testkit.Deadline(t, 0))
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: mode})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(coderLimit)
		return &coderConn{t: t, c: c}, nil
	}
}

// until returns a context that ends at deadline; coder closes the
// connection if it ends during a call.
func until(deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), deadline)
}

func (c *coderConn) send(typ duplex.MessageType, p []byte) error {
	c.sent.sent(len(p))
	ctx, cancel := until(testkit.Deadline(c.t, len(p)))
	defer cancel()
	return c.c.Write(ctx, websocket.MessageType(typ), p)
}

func (c *coderConn) sendFragmented(typ duplex.MessageType, p []byte) error {
	c.sent.sent(len(p))
	ctx, cancel := until(testkit.Deadline(c.t, len(p)))
	defer cancel()
	return coderFragmented(ctx, c.c, websocket.MessageType(typ), p)
}

func (c *coderConn) recv() (duplex.MessageType, []byte, error) {
	ctx, cancel := until(c.sent.deadline(c.t))
	defer cancel()
	typ, p, err := c.c.Read(ctx)
	return duplex.MessageType(typ), p, err
}

func (c *coderConn) ping() error {
	// coder's Ping waits for a concurrent Read to see the pong.
	echo := make(chan error, 1)
	go func() {
		_, p, err := c.recv()
		if err == nil && string(p) != "after ping" {
			err = fmt.Errorf("got %q; want %q", p, "after ping")
		}
		echo <- err
	}()
	ctx, cancel := until(testkit.Deadline(c.t, 0))
	defer cancel()
	perr := c.c.Ping(ctx)
	if err := c.send(duplex.MessageText, []byte("after ping")); err != nil {
		return err
	}
	if err := <-echo; err != nil {
		return err
	}
	return perr
}

// close returns nil only when duplex answered with the same code.
func (c *coderConn) close(code int, reason string) error {
	return c.c.Close(websocket.StatusCode(code), reason)
}

func (c *coderConn) closed() (int, string, error) {
	ctx, cancel := until(testkit.Deadline(c.t, 0))
	defer cancel()
	_, _, err := c.c.Read(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason, nil
	}
	return 0, "", fmt.Errorf("read returned %v; want a close", err)
}

func (c *coderConn) kill() { c.c.CloseNow() }
