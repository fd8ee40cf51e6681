package duplex

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchPair returns both ends of a connection over loopback TCP, made by
// Accept and Dial as an application makes them; with compression, both
// offer and accept permessage-deflate.
func benchPair(b *testing.B, compression *CompressionOptions) (server, client *Conn) {
	b.Helper()
	accepted := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Compression: compression})
		if err != nil {
			b.Error(err)
		}
		accepted <- c
	}))
	b.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Compression: compression})
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("Accept failed")
	}
	b.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
	})
	return server, client
}

// BenchmarkConn sends binary messages one way through a Conn pair and
// reads them at the other end, so ns/op is per message and allocs/op
// counts both ends. Server to client is unmasked; client to server is
// masked on write and unmasked on read. The modes:
//
//	Read:     Write, then Read (allocates the message it returns)
//	Reader:   Write, then Reader into a reused buffer
//	Writer:   Writer (streamed, 16 KiB frames), then Reader into a reused buffer
//	Deadline: as Reader, with contexts that can end, as servers use
//
// The target is 0 allocs/op for Reader and Writer, 1 for Read.
func BenchmarkConn(b *testing.B) {
	server, client := benchPair(b, nil)
	dirs := []struct {
		name string
		w, r *Conn
	}{
		{"server-to-client", server, client},
		{"client-to-server", client, server},
	}
	for _, d := range dirs {
		for _, mode := range []string{"Read", "ReadInto", "Reader", "Writer", "Deadline"} {
			for _, n := range []int{16, 1 << 10, 64 << 10} {
				b.Run(d.name+"/"+mode+"/"+strconv.Itoa(n), func(b *testing.B) {
					benchTransfer(b, d.w, d.r, mode, n, nil)
				})
			}
		}
	}
}

// BenchmarkConnDeflate is BenchmarkConn with permessage-deflate (level 1,
// context takeover) on text messages of random words: compressing,
// framing, inflating and checking UTF-8, per message, both ends counted.
func BenchmarkConnDeflate(b *testing.B) {
	server, client := benchPair(b, &CompressionOptions{})
	dirs := []struct {
		name string
		w, r *Conn
	}{
		{"server-to-client", server, client},
		{"client-to-server", client, server},
	}
	for _, d := range dirs {
		for _, mode := range []string{"Read", "ReadInto", "Reader"} {
			for _, n := range []int{1 << 10, 64 << 10} {
				b.Run(d.name+"/"+mode+"/"+strconv.Itoa(n), func(b *testing.B) {
					benchTransfer(b, d.w, d.r, mode, n, textPayload(n))
				})
			}
		}
	}
}

// benchTransfer sends msg, or n bytes counting up, b.N times from w and
// reads them at r.
func benchTransfer(b *testing.B, w, r *Conn, mode string, n int, msg []byte) {
	typ := MessageText
	if msg == nil {
		typ = MessageBinary
		msg = make([]byte, n)
		for i := range msg {
			msg[i] = byte(i)
		}
	}
	buf := make([]byte, n)
	ctx := context.Background()
	if mode == "Deadline" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Hour)
		defer cancel()
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()

	writeErr := make(chan error, 1)
	go func() {
		writeErr <- func() error {
			for i := 0; i < b.N; i++ {
				if mode != "Writer" {
					if err := w.Write(ctx, typ, msg); err != nil {
						return err
					}
					continue
				}
				mw, err := w.Writer(ctx, typ)
				if err != nil {
					return err
				}
				if _, err := mw.Write(msg); err != nil {
					return err
				}
				if err := mw.Close(); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	for i := 0; i < b.N; i++ {
		var got int
		if mode == "Read" {
			_, p, err := r.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got = len(p)
		} else if mode == "ReadInto" {
			_, p, err := r.ReadInto(ctx, buf)
			if err != nil {
				b.Fatal(err)
			}
			got, buf = len(p), p
		} else {
			_, mr, err := r.Reader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if got, err = readMessage(mr, buf); err != nil {
				b.Fatal(err)
			}
		}
		if got != n {
			b.Fatalf("read a message of %d bytes; want %d", got, n)
		}
	}
	if err := <-writeErr; err != nil {
		b.Fatal(err)
	}
}

// readMessage reads a message into buf, which must be large enough, and
// returns its length.
func readMessage(r io.Reader, buf []byte) (int, error) {
	total := 0
	for {
		k, err := r.Read(buf[total:])
		total += k
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
