package testkit

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// AcceptKey computes Sec-WebSocket-Accept for key (RFC 6455 §4.2.2),
// written out again here so that tests do not trust the library's copy.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Response101 is a correct 101 answer to a request with key, followed by
// any extra header lines ("Sec-WebSocket-Protocol: chat").
func Response101(key string, headerLines ...string) string {
	s := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n"
	for _, l := range headerLines {
		s += l + "\r\n"
	}
	return s + "\r\n"
}

// crlf lets tests write HTTP messages with plain newlines: it turns the
// head's line ends into CRLF and ends it with an empty line. Anything after
// the first empty line is the body and is kept as it is.
func crlf(text string) string {
	head, body, ok := strings.Cut(text, "\r\n\r\n")
	if !ok {
		head, body, _ = strings.Cut(text, "\n\n")
	}
	head = strings.TrimRight(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	return strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
}

// DialRaw opens a WebSocket connection to rawURL (ws://host:port/path) by
// hand, with extra request headers, and returns it as a client RawPeer with
// the 101 response. It fails the test unless the server answers 101 with
// the right Sec-WebSocket-Accept. The connection is closed when the test
// ends.
func DialRaw(t testing.TB, rawURL string, extra http.Header) (*RawPeer, *http.Response) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("DialRaw: %v", err)
	}
	c, err := net.DialTimeout("tcp", u.Host, DefaultTimeout)
	if err != nil {
		t.Fatalf("DialRaw: %v", err)
	}
	t.Cleanup(func() { c.Close() })

	var kb [16]byte
	rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	h := http.Header{
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {key},
		"Sec-Websocket-Version": {"13"},
	}
	for k, v := range extra {
		h[http.CanonicalHeaderKey(k)] = v
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	h.Write(&req)
	req.WriteString("\r\n")

	c.SetDeadline(time.Now().Add(DefaultTimeout))
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatalf("DialRaw: write request: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("DialRaw: read response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("DialRaw: status %d %q; want 101", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		t.Fatalf("DialRaw: Sec-WebSocket-Accept = %q; want %q", got, want)
	}
	c.SetDeadline(time.Time{})
	return newRawPeer(c, br, true), resp
}

// RawRequest sends requestText, an HTTP request written with plain
// newlines, to addr (host:port) on a new connection and returns the
// response's status, header and body (at most 4 KiB).
func RawRequest(t testing.TB, addr, requestText string) (status int, header http.Header, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		t.Fatalf("RawRequest: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(DefaultTimeout))
	if _, err := io.WriteString(c, crlf(requestText)); err != nil {
		t.Fatalf("RawRequest: write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("RawRequest: read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, resp.Header, string(b)
}

// ServeRaw starts a TCP server that answers every WebSocket handshake
// with a correct 101 written by hand, and hands each connection over as a
// server RawPeer, so tests can send a library client anything. It returns
// the ws:// URL. The server and its connections close when the test ends.
func ServeRaw(t testing.TB) (wsURL string, peers <-chan *RawPeer) {
	t.Helper()
	return ServeHandshake(t, nil)
}

// ServeHandshake is ServeRaw with the answer chosen by respond: it gets the
// request and returns the raw response, written with plain newlines (see
// Response101). An empty answer writes nothing and leaves the connection
// open, as a server that hangs. The peer is handed over in every case,
// with its Request set.
func ServeHandshake(t testing.TB, respond func(r *http.Request) string) (wsURL string, peers <-chan *RawPeer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ServeRaw: %v", err)
	}
	if respond == nil {
		respond = func(r *http.Request) string {
			return Response101(r.Header.Get("Sec-WebSocket-Key"))
		}
	}
	ch := make(chan *RawPeer, 16)
	done := make(chan struct{})
	var conns track
	var wg sync.WaitGroup
	serve := func(c net.Conn) {
		defer wg.Done()
		c.SetDeadline(time.Now().Add(DefaultTimeout))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			return
		}
		if answer := respond(req); answer != "" {
			if _, err := io.WriteString(c, crlf(answer)); err != nil {
				c.Close()
				return
			}
		}
		c.SetDeadline(time.Time{})
		p := newRawPeer(c, br, false)
		p.Request = req
		select {
		case ch <- p:
		case <-done:
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.add(c)
			wg.Add(1)
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		conns.closeAll()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String(), ch
}
