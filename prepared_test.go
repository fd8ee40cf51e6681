package duplex

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// One PreparedMessage broadcast to server connections with different
// framing: each client reads the message, and the frame is encoded once
// per framing (plain, deflate level 1), with context takeover falling back
// to a per-connection Write.
func TestPreparedMessageBroadcast(t *testing.T) {
	msg := bytes.Repeat([]byte(`{"channel":"news","offset":7,"data":"hello"}`), 20)
	pm := NewPreparedMessage(MessageText, msg)

	var mu sync.Mutex
	var servers []*Conn
	ready := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Compression: &CompressionOptions{Level: 1}})
		if err != nil {
			return
		}
		mu.Lock()
		servers = append(servers, c)
		mu.Unlock()
		ready <- struct{}{}
	}))
	defer testkit.CloseServer(t, srv)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := testkit.Context(t, 0)
	defer cancel()

	clients := map[string]*DialOptions{
		"plain":       nil,
		"no-takeover": {Compression: &CompressionOptions{NoContextTakeover: true}},
		"takeover":    {Compression: &CompressionOptions{}},
	}
	var conns []*Conn
	for name, o := range clients {
		c, _, err := Dial(ctx, url, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
		<-ready
	}
	for _, s := range servers {
		defer s.CloseNow()
		for i := 0; i < 2; i++ {
			if err := s.WritePrepared(ctx, pm); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range conns {
		for i := 0; i < 2; i++ {
			typ, p, err := c.Read(ctx)
			if err != nil || typ != MessageText || !bytes.Equal(p, msg) {
				t.Fatalf("client (%q) read %v %d bytes, %v", c.Extensions(), typ, len(p), err)
			}
		}
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if len(pm.frames) != 2 {
		t.Fatalf("%d encoded frames cached; want 2 (plain, deflate level 1): %v", len(pm.frames), pm.frames)
	}
}
