package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/internal/testkit"
)

// gatewayServer is a gateway behind an httptest server whose TCP
// connections can all be dropped at once, as when the process dies.
type gatewayServer struct {
	t    *testing.T
	gw   *gateway.Gateway
	srv  *httptest.Server
	ln   *trackingListener
	logs *lockedBuffer // the gateway's log, one JSON object a line
	addr string        // host:port
	url  string        // http://host:port
}

// startGateway serves a new gateway with opts on addr ("127.0.0.1:0" for
// any port). It logs to a buffer, at debug level, in JSON. The server and
// the gateway's connections are stopped when the test ends.
func startGateway(t *testing.T, addr string, opts gateway.Options) *gatewayServer {
	t.Helper()
	logs := new(lockedBuffer)
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(opts, logger)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ln := &trackingListener{Listener: l}
	srv := &httptest.Server{Listener: ln, Config: opts.HTTPServer(gw, logger)}
	srv.Start()
	s := &gatewayServer{t: t, gw: gw, srv: srv, ln: ln, logs: logs, addr: l.Addr().String(), url: srv.URL}
	t.Cleanup(s.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log (%s):\n%s", s.addr, logs)
		}
	})
	return s
}

// stop closes every WebSocket with 1001 and stops the server.
func (s *gatewayServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout(0))
	defer cancel()
	if err := s.gw.Shutdown(ctx); err != nil {
		s.t.Errorf("gateway shutdown on %s: %v", s.addr, err)
	}
	testkit.CloseServer(s.t, s.srv)
	s.ln.release()
}

// kill stops the server the way a crash would: the listener closes and
// every TCP connection, hijacked WebSockets included, is dropped without
// a close frame. It returns when the gateway's sessions have all ended.
func (s *gatewayServer) kill() {
	s.t.Helper()
	s.srv.Listener.Close()
	s.ln.closeAll()
	testkit.CloseServer(s.t, s.srv)
	// Shutdown waits for every session; theirs already failed on the
	// closed connections, so its 1001 reaches no one.
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := s.gw.Shutdown(ctx); err != nil {
		s.t.Fatalf("sessions of the killed gateway on %s did not end: %v", s.addr, err)
	}
}

// logRecord is one line of the gateway's JSON log.
type logRecord map[string]any

func (r logRecord) str(key string) string {
	s, _ := r[key].(string)
	return s
}

// records returns the gateway's log records whose message is msg.
func (s *gatewayServer) records(msg string) []logRecord {
	s.t.Helper()
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			s.t.Fatalf("gateway log line %q is not JSON: %v", sc.Text(), err)
		}
		if r.str("msg") == msg {
			out = append(out, r)
		}
	}
	return out
}

// trackingListener remembers every connection it accepted, so that they
// can all be closed, including those the HTTP server no longer tracks
// because a WebSocket hijacked them.
//
// A WebSocket the gateway hands to the event loop (Conn.Detach) gets a
// descriptor of its own and the accepted one is closed, so closing what
// Accept returned would not drop it. With holdSockets set, the listener
// keeps a descriptor of every socket it accepts (sockets.go), and
// closeAll shuts the sockets down through them.
type trackingListener struct {
	net.Listener
	mu      sync.Mutex
	conns   []net.Conn // guarded by mu
	held    []int      // guarded by mu; descriptors of our own, with holdSockets
	holding bool       // guarded by mu
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		if l.holding {
			if fd, ok := holdSocket(c); ok {
				l.held = append(l.held, fd)
			}
		}
		l.mu.Unlock()
	}
	return c, err
}

// holdSockets makes the listener keep a descriptor of each socket it
// accepts from now on, so that closeAll can drop event-loop WebSockets.
// Only for tests that drop connections: a held socket stays open until
// closeAll or release, whoever else closes it.
func (l *trackingListener) holdSockets() {
	l.mu.Lock()
	l.holding = true
	l.mu.Unlock()
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
	for _, fd := range l.held {
		dropSocket(fd)
	}
	l.held = nil
}

// release closes the held descriptors without shutting their sockets
// down.
func (l *trackingListener) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fd := range l.held {
		closeHeld(fd)
	}
	l.held = nil
}

// countingConn counts the bytes that cross a connection, as the wire
// carries them (after compression, before TLS).
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// countingListener wraps every accepted connection in a countingConn.
type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c}, nil
}

// connKey is the context key under which a request finds its connection
// (http.Server.ConnContext).
type connKey struct{}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connOf(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}
