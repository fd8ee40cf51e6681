//go:build linux

package duplex_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// TestWritePreparedBatch: a batch reaches the peer as the same messages,
// in order, whatever the batch holds: more frames than one system call
// takes, messages large enough to fill the socket (the waiting path), and
// compressed ones that take the per-connection path (context takeover).
func TestWritePreparedBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		comp *duplex.CompressionOptions
	}{
		{"plain", nil},
		{"deflate no takeover", &duplex.CompressionOptions{NoContextTakeover: true}},
		{"deflate takeover", &duplex.CompressionOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pms []*duplex.PreparedMessage
			var want [][]byte
			for i := range 40 {
				p := []byte(fmt.Sprintf("message %d ", i))
				if i%7 == 3 {
					p = bytes.Repeat(p, 200<<10/len(p)) // fills loopback's buffers
				}
				pms = append(pms, duplex.NewPreparedMessage(duplex.MessageText, p))
				want = append(want, p)
			}
			result := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: tc.comp})
				if err != nil {
					result <- err
					return
				}
				ec, err := c.Detach(nil)
				if err != nil {
					result <- err
					return
				}
				n, err := ec.WritePreparedBatch(context.Background(), pms)
				if err == nil && n != len(pms) {
					err = fmt.Errorf("WritePreparedBatch sent %d of %d", n, len(pms))
				}
				result <- err
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &duplex.DialOptions{Compression: tc.comp})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			for i, w := range want {
				_, p, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(p, w) {
					t.Fatalf("message %d: got %d bytes %.20q; want %d bytes %.20q", i, len(p), p, len(w), w)
				}
			}
			select {
			case err := <-result:
				if err != nil {
					t.Fatal(err)
				}
			case <-ctx.Done():
				t.Fatal("WritePreparedBatch did not return")
			}
		})
	}
}

// TestWritePreparedBatchAfterClose: nothing goes out after the close frame,
// and the caller learns it.
func TestWritePreparedBatchAfterClose(t *testing.T) {
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			result <- err
			return
		}
		ec, err := c.Detach(nil)
		if err != nil {
			result <- err
			return
		}
		ec.Close(duplex.StatusGoingAway, "bye")
		n, err := ec.WritePreparedBatch(context.Background(), []*duplex.PreparedMessage{duplex.NewPreparedMessage(duplex.MessageText, []byte("late"))})
		if err == nil || n != 0 {
			err = fmt.Errorf("after Close: WritePreparedBatch = %d, %v; want 0 and an error", n, err)
		} else {
			err = nil
		}
		result <- err
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); duplex.CloseStatus(err) != duplex.StatusGoingAway {
		t.Errorf("Read = %v; want the server's 1001 and no message before it", err)
	}
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}
