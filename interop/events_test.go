//go:build linux

package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
	"github.com/lxzan/gws"
)

// TestEventModePeers runs gorilla, coder and gws clients against duplex's
// event-driven server (ServeEvents: the handshake and every frame handled
// in the epoll loop): every message shape, fragments from the peer, a
// ping from the peer, a burst, and close codes from both sides.
func TestEventModePeers(t *testing.T) {
	t.Parallel()
	peers := []struct {
		name     string
		dial     peerDial
		compress bool
		quirks   map[duplex.StatusCode]string
	}{
		{"gorilla", gorillaDial(false), false, gorillaQuirks},
		{"deflate/gorilla", gorillaDial(true), true, gorillaQuirks},
		{"coder", coderDial(websocket.CompressionDisabled), false, nil},
		{"deflate/coder", coderDial(websocket.CompressionContextTakeover), true, nil},
		{"gws", gwsDial(gws.PermessageDeflate{}), false, nil},
		{"deflate/gws", gwsDial(gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true}), true, nil},
	}
	for _, pc := range peers {
		t.Run(pc.name, func(t *testing.T) {
			var opts duplex.EventServerOptions
			if pc.compress {
				opts.Compression = &duplex.CompressionOptions{}
			}
			url, ended := startEventServer(t, &opts)
			c, err := pc.dial(t, url)
			if err != nil {
				t.Fatalf("peer dial: %v", err)
			}
			defer c.kill()
			for _, m := range dataMessages(0) {
				if err := c.send(m.typ, m.p); err != nil {
					t.Fatalf("send %v: %v", m, err)
				}
				typ, p, err := c.recv()
				if err != nil {
					t.Fatalf("echo of %v: %v", m, err)
				}
				checkEcho(t, m, typ, p)
			}
			m := message{"fragmented text", duplex.MessageText, fragText(fragmentedSize)}
			if err := c.sendFragmented(m.typ, m.p); err != nil && !errors.Is(err, errNoFragments) {
				t.Fatal(err)
			} else if err != nil {
				c.send(m.typ, m.p)
			}
			typ, p, err := c.recv()
			if err != nil {
				t.Fatal(err)
			}
			checkEcho(t, m, typ, p)
			if err := c.ping(); err != nil {
				t.Fatalf("peer ping: %v", err)
			}
			for _, m := range burstMessages(64) {
				if err := c.send(m.typ, m.p); err != nil {
					t.Fatal(err)
				}
				typ, p, err := c.recv()
				if err != nil {
					t.Fatal(err)
				}
				checkEcho(t, m, typ, p)
			}
			if err := c.close(int(duplex.StatusNormalClosure), "done"); err != nil {
				t.Errorf("peer close: %v", err)
			}
			checkEventEnd(t, ended, duplex.StatusNormalClosure, "done", false)

			for _, code := range closeCodes {
				if pc.quirks[code] != "" {
					continue
				}
				reason := closeReason(code)
				// The peer closes.
				c, err := pc.dial(t, url)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.close(int(code), reason); err != nil {
					t.Errorf("peer close(%d): %v", code, err)
				}
				c.kill()
				checkEventEnd(t, ended, code, reason, false)
				// duplex closes.
				if c, err = pc.dial(t, url); err != nil {
					t.Fatal(err)
				}
				if err := c.send(duplex.MessageText, []byte(fmt.Sprintf("cmd:close %d %s", code, reason))); err != nil {
					t.Fatal(err)
				}
				gotCode, gotReason, err := c.closed()
				if err != nil || gotCode != int(code) || gotReason != reason {
					t.Errorf("duplex closed with %d %q; the peer saw %d %q, %v", code, reason, gotCode, gotReason, err)
				}
				c.kill()
				checkEventEnd(t, ended, code, reason, true)
			}
		})
	}
}

// startEventServer starts ServeEvents with an echo handler that also
// closes on "cmd:close CODE REASON", and reports each connection's end.
func startEventServer(t *testing.T, opts *duplex.EventServerOptions) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ended := make(chan error, 64)
	s, err := duplex.ServeEvents(ln, &duplex.EventHandler{
		OnMessage: func(c *duplex.EventConn, typ duplex.MessageType, p []byte) {
			if cmd, arg, ok := parseCommand(p); typ == duplex.MessageText && ok && cmd == "close" {
				c.Close(parseClose(arg))
				return
			}
			c.Write(context.Background(), typ, p)
		},
		OnClose: func(c *duplex.EventConn, err error) { ended <- err },
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "ws://" + ln.Addr().String() + "/c/events", ended
}

// checkEventEnd checks the next connection end the server reported.
func checkEventEnd(t *testing.T, ended <-chan error, code duplex.StatusCode, reason string, sent bool) {
	t.Helper()
	select {
	case err := <-ended:
		var ce *duplex.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason || ce.Sent != sent {
			t.Errorf("OnClose got %v; want code %d %q, sent by duplex: %v", err, code, reason, sent)
		}
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("no OnClose for the connection closed with %d", code)
	}
}
