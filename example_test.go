package duplex_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
)

// An echo server and a client that talks to it.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered with an HTTP error
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
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, duplex.MessageText, []byte("hello"))
	_, p, _ := c.Read(ctx)
	fmt.Println(string(p))
	fmt.Println(c.Close(duplex.StatusNormalClosure, "bye"))
	// Output:
	// hello
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
