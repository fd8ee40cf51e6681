package duplex_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexws/duplex"
)

// echo is an ordinary http.HandlerFunc. Authenticate first: nothing is
// upgraded until Accept, so a 401 is a plain HTTP answer.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := duplex.Accept(w, r, nil) // nil: same-origin only, 32 MiB read limit
	if err != nil {
		return // Accept has answered 400/403/405/426 with the reason
	}
	defer c.CloseNow()
	var buf []byte
	for {
		typ, msg, err := c.ReadInto(r.Context(), buf) // reuses buf: no allocation per message
		if err != nil {
			return // a *duplex.CloseError says who closed, with which code, and why
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
		buf = msg
	}
}

// A client of the echo server above. Dial takes ws, wss, http and https
// URLs; user:pass@ in the URL becomes Basic authorization, and
// HTTPS_PROXY and HTTP_PROXY are honoured.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(echo)) // or http.HandleFunc("/ws", echo)
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, duplex.MessageText, []byte("hello"))
	_, p, err := c.Read(ctx)
	fmt.Println(string(p), err)
	fmt.Println(c.Close(duplex.StatusNormalClosure, "bye")) // nil: the close handshake completed
	// Output:
	// hello <nil>
	// <nil>
}

// A handler authenticates before Accept: a refused client gets a plain
// HTTP 401, which Dial reports as a *HandshakeError.
func ExampleHandshakeError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != "123123" {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(duplex.StatusNormalClosure, "")
	}))
	defer srv.Close()

	_, _, err := duplex.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/?token=bad", nil)
	var he *duplex.HandshakeError
	if errors.As(err, &he) {
		fmt.Println(he.StatusCode, string(he.Body))
	}
	// Output:
	// 401 invalid token
}

// The peer's close code and reason arrive as a *CloseError.
func ExampleCloseStatus() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		go c.Read(context.Background()) // a reader sees the client's answer
		c.Close(4001, "room closed")
	}))
	defer srv.Close()

	c, _, err := duplex.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = c.Read(context.Background())
	fmt.Println(duplex.CloseStatus(err))
	var ce *duplex.CloseError
	if errors.As(err, &ce) {
		fmt.Printf("%q sent by us: %v\n", ce.Reason, ce.Sent)
	}
	// Output:
	// 4001
	// "room closed" sent by us: false
}

// Compression (permessage-deflate, RFC 7692) is on when both sides ask
// for it: the server in AcceptOptions, the client in DialOptions.
// Messages under the threshold (128 bytes by default) go uncompressed.
func ExampleCompressionOptions() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{
			Compression: &duplex.CompressionOptions{}, // level 1, context takeover
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, p)
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &duplex.DialOptions{
		Compression: &duplex.CompressionOptions{NoContextTakeover: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(duplex.StatusNormalClosure, "")
	fmt.Println(c.Extensions())
	msg := strings.Repeat(`{"price":42,"symbol":"ACME"}`, 100)
	c.Write(ctx, duplex.MessageText, []byte(msg))
	_, p, err := c.Read(ctx)
	fmt.Println(len(p), string(p) == msg, err)
	// Output:
	// permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// 2800 true <nil>
}

// gorilla/websocket's SetReadDeadline becomes a context. A Read whose
// context ends while it waits for a message returns the context's error
// and the connection stays usable (see Conn for a message cut halfway).
func ExampleConn_Read_timeout() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Read(r.Context()) // the client's "go"
		c.Write(r.Context(), duplex.MessageText, []byte("late"))
		c.Read(r.Context()) // until the client closes
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(duplex.StatusNormalClosure, "")

	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, _, err = c.Read(short) // nothing comes
	cancel()
	fmt.Println(err)

	c.Write(ctx, duplex.MessageText, []byte("go"))
	_, p, err := c.Read(ctx)
	fmt.Println(string(p), err)
	// Output:
	// context deadline exceeded
	// late <nil>
}

// Ping measures the round trip. Pongs are seen only while a goroutine
// reads, as they are in every mode of duplex: here that reader is the
// loop that handles the messages. Pings from the peer are answered the
// same way, with no handler to write.
func ExampleConn_Ping() {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(duplex.StatusNormalClosure, "")
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()

	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rtt, err := c.Ping(pingCtx)
	fmt.Println(rtt > 0, err)
	// Output: true <nil>
}
