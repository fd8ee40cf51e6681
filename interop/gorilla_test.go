package interop

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/gorilla/websocket"
)

// gorillaQuirks: gorilla v1.5.3 leaves 1014 (Bad Gateway, in the IANA
// registry since 2013) out of the close codes it accepts, and fails the
// connection with 1002 when it receives one (conn.go,
// validReceivedCloseCodes).
var gorillaQuirks = map[duplex.StatusCode]string{
	duplex.StatusBadGateway: "gorilla rejects received close code 1014 with 1002",
}

// TestGorilla runs gorilla/websocket against duplex, both ways. gorilla
// supports only permessage-deflate without context takeover.
func TestGorilla(t *testing.T) {
	t.Parallel()
	full := clientRun{peerFragments: true, burst: 300, closeCodes: true, closeQuirks: gorillaQuirks}
	t.Run("gorilla server, duplex client", func(t *testing.T) {
		runDuplexClient(t, startGorillaServer(t, false), full)
	})
	t.Run("duplex server, gorilla client", func(t *testing.T) {
		runPeerClient(t, startDuplexServer(t, nil), gorillaDial(false),
			peerRun{peerFragments: true, burst: 300, closeCodes: true, closeQuirks: gorillaQuirks})
	})
	t.Run("deflate/gorilla server, duplex client", func(t *testing.T) {
		runDuplexClient(t, startGorillaServer(t, true),
			clientRun{compression: &duplex.CompressionOptions{}, expectDeflate: true, peerFragments: true, burst: 300})
	})
	t.Run("deflate/duplex server, gorilla client", func(t *testing.T) {
		s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
		runPeerClient(t, s, gorillaDial(true), peerRun{compressed: true, peerFragments: true, burst: 300})
	})
}

// startGorillaServer starts gorilla's echo server for the command protocol.
func startGorillaServer(t *testing.T, compress bool) string {
	t.Helper()
	var closes closeLog
	up := websocket.Upgrader{EnableCompression: compress}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := connID(r)
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		pongs := make(chan string, 1)
		c.SetPongHandler(func(s string) error {
			select {
			case pongs <- s:
			default:
			}
			return nil
		})
		// gorilla allows one writer at a time; WriteControl is the exception.
		var wmu sync.Mutex
		write := func(typ int, p []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			return c.WriteMessage(typ, p)
		}
		var bg sync.WaitGroup
		defer bg.Wait()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closes.record(id, ce.Code, ce.Text, nil)
				} else {
					closes.record(id, 0, "", err)
				}
				return
			}
			cmd, arg, ok := parseCommand(p)
			if typ != websocket.TextMessage || !ok {
				if err := write(typ, p); err != nil {
					return
				}
				continue
			}
			switch cmd {
			case "ping":
				c.WriteControl(websocket.PingMessage, []byte("gorilla ping"), time.Now().Add(testkit.Timeout(0)))
				bg.Go(func() {
					reply := "pong"
					select {
					case s := <-pongs:
						if s != "gorilla ping" {
							reply = fmt.Sprintf("pong with payload %q; want %q", s, "gorilla ping")
						}
					case <-time.After(testkit.Timeout(0)):
						reply = "no pong"
					}
					write(websocket.TextMessage, []byte(reply))
				})
			case "fragmented":
				n, _ := strconv.Atoi(arg)
				wmu.Lock()
				err := gorillaFragmented(c, websocket.BinaryMessage, pattern(n))
				wmu.Unlock()
				if err != nil {
					return
				}
			case "close":
				code, reason := parseClose(arg)
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), reason), time.Now().Add(testkit.Timeout(0)))
				// Read until the answer, then close the TCP connection. The
				// default close handler would send a second close frame.
				c.SetCloseHandler(func(int, string) error { return nil })
				c.SetReadDeadline(time.Now().Add(testkit.Timeout(0)))
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			case "closed":
				if err := write(websocket.TextMessage, []byte(closes.wait(arg))); err != nil {
					return
				}
			}
		}
	}))
	testkit.Serve(t, srv)
	return wsURL(srv.URL)
}

// gorillaFragmented streams p through NextWriter, which sends a frame each
// time its write buffer (4 KiB by default) fills.
func gorillaFragmented(c *websocket.Conn, typ int, p []byte) error {
	w, err := c.NextWriter(typ)
	if err != nil {
		return err
	}
	return writeChunks(w, p, 1000)
}

type gorillaConn struct {
	t     *testing.T
	c     *websocket.Conn
	pongs chan string
	sent  inflight
}

func gorillaDial(compress bool) peerDial {
	return func(t *testing.T, url string) (peerConn, error) {
		d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: testkit.Timeout(0)}
		c, _, err := d.Dial(url, nil)
		if err != nil {
			return nil, err
		}
		g := &gorillaConn{t: t, c: c, pongs: make(chan string, 1)}
		c.SetPongHandler(func(s string) error {
			select {
			case g.pongs <- s:
			default:
			}
			return nil
		})
		return g, nil
	}
}

func (g *gorillaConn) send(typ duplex.MessageType, p []byte) error {
	g.sent.sent(len(p))
	g.c.SetWriteDeadline(testkit.Deadline(g.t, len(p)))
	return g.c.WriteMessage(int(typ), p)
}

func (g *gorillaConn) sendFragmented(typ duplex.MessageType, p []byte) error {
	g.sent.sent(len(p))
	g.c.SetWriteDeadline(testkit.Deadline(g.t, len(p)))
	return gorillaFragmented(g.c, int(typ), p)
}

func (g *gorillaConn) recv() (duplex.MessageType, []byte, error) {
	g.c.SetReadDeadline(g.sent.deadline(g.t))
	typ, p, err := g.c.ReadMessage()
	return duplex.MessageType(typ), p, err
}

func (g *gorillaConn) ping() error {
	if err := g.c.WriteControl(websocket.PingMessage, []byte("gorilla ping"), testkit.Deadline(g.t, 0)); err != nil {
		return err
	}
	// gorilla handles control frames only while reading; duplex sends the
	// pong before the echo of the next message.
	if err := g.send(duplex.MessageText, []byte("after ping")); err != nil {
		return err
	}
	if _, p, err := g.recv(); err != nil || string(p) != "after ping" {
		return fmt.Errorf("echo after ping: %q, %v", p, err)
	}
	select {
	case s := <-g.pongs:
		if s != "gorilla ping" {
			return fmt.Errorf("pong payload %q; want %q", s, "gorilla ping")
		}
		return nil
	default:
		return errors.New("no pong before the echo")
	}
}

func (g *gorillaConn) close(code int, reason string) error {
	if err := g.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), testkit.Deadline(g.t, 0)); err != nil {
		return err
	}
	gotCode, _, err := g.closed()
	if err != nil {
		return err
	}
	if gotCode != code {
		return fmt.Errorf("answered with close code %d; want the echo of %d", gotCode, code)
	}
	return nil
}

func (g *gorillaConn) closed() (int, string, error) {
	defer g.c.Close()
	g.c.SetReadDeadline(testkit.Deadline(g.t, 0))
	for {
		_, _, err := g.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text, nil
		}
		return 0, "", err
	}
}

func (g *gorillaConn) kill() { g.c.Close() }
