package wsjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/wsjson"
)

// pair returns the two ends of a WebSocket connection over loopback.
func pair(t testing.TB) (client, server *duplex.Conn) {
	t.Helper()
	accepted := make(chan *duplex.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- c // hijacked: it outlives the handler
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { client.CloseNow() })
	select {
	case server = <-accepted:
	case <-ctx.Done():
		t.Fatal("the server never accepted")
	}
	t.Cleanup(func() { server.CloseNow() })
	return client, server
}

// testCtx bounds one test's calls: generous, so a loaded machine does not
// fail it, and finite, so a bug fails it instead of hanging the run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type note struct {
	Op   string   `json:"op"`
	N    int      `json:"n"`
	Tags []string `json:"tags,omitempty"`
}

func TestWriteSendsOneTextMessageWithTheValueAlone(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	if err := wsjson.Write(ctx, client, note{Op: "add", N: 2, Tags: []string{"<b>"}}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	typ, p, err := server.Read(ctx)
	if err != nil {
		t.Fatalf("server Read: %v", err)
	}
	// The bytes json.Marshal gives, HTML escaping included, with no
	// trailing newline (json.Encoder adds one; gorilla sends it).
	want := `{"op":"add","n":2,"tags":["\u003cb\u003e"]}`
	if typ != duplex.MessageText || string(p) != want {
		t.Fatalf("server got %v %q; want text %q", typ, p, want)
	}
}

func TestReadDecodesTextAndBinary(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	for _, typ := range []duplex.MessageType{duplex.MessageText, duplex.MessageBinary} {
		if err := server.Write(ctx, typ, []byte(`{"op":"sub","n":7}`)); err != nil {
			t.Fatalf("server Write: %v", err)
		}
		var got note
		if err := wsjson.Read(ctx, client, &got); err != nil {
			t.Fatalf("Read of a %v message: %v", typ, err)
		}
		if want := (note{Op: "sub", N: 7}); got.Op != want.Op || got.N != want.N {
			t.Fatalf("Read of a %v message = %+v; want %+v", typ, got, want)
		}
	}
}

// A message that is not JSON, or not of v's shape, is an error of that
// message alone: the connection goes on, and the next Read gets the next
// message.
func TestReadBadMessageKeepsTheConnection(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	for _, m := range []string{`not json`, `{"n":"seven"}`, `{"op":"a"} {"op":"b"}`, ``, `{"op":"ok","n":1}`} {
		if err := server.Write(ctx, duplex.MessageText, []byte(m)); err != nil {
			t.Fatalf("server Write: %v", err)
		}
	}
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	for i, check := range []func(error) bool{
		func(err error) bool { return errors.As(err, &syntax) },
		func(err error) bool { return errors.As(err, &typeErr) && typeErr.Field == "n" },
		func(err error) bool { return errors.As(err, &syntax) }, // two values: trailing data
		func(err error) bool { return errors.As(err, &syntax) }, // empty message
	} {
		var v note
		err := wsjson.Read(ctx, client, &v)
		if err == nil || !check(err) || !strings.HasPrefix(err.Error(), "wsjson: read: ") {
			t.Fatalf("Read #%d = %v; want a json error prefixed wsjson: read:", i, err)
		}
		if duplex.CloseStatus(err) != 0 {
			t.Fatalf("Read #%d closed the connection: %v", i, err)
		}
	}
	var v note
	if err := wsjson.Read(ctx, client, &v); err != nil || v.Op != "ok" || v.N != 1 {
		t.Fatalf("Read after the bad messages = %+v, %v; want {ok 1}, nil", v, err)
	}
}

func TestWriteUnencodableSendsNothing(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	var unsupported *json.UnsupportedTypeError
	if err := wsjson.Write(ctx, client, map[string]any{"c": make(chan int)}); !errors.As(err, &unsupported) {
		t.Fatalf("Write(chan) = %v; want a *json.UnsupportedTypeError", err)
	}
	if err := wsjson.Write(ctx, client, "after"); err != nil {
		t.Fatalf("Write after the failed one: %v", err)
	}
	_, p, err := server.Read(ctx)
	if err != nil || string(p) != `"after"` {
		t.Fatalf("server's first message = %q, %v; want %q (nothing of the failed Write)", p, err, `"after"`)
	}
}

// The connection's read limit bounds a JSON message like any other: the
// connection is closed with 1009 and Read returns its CloseError.
func TestReadLimit(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	client.SetReadLimit(64)
	go server.Read(ctx) // reads the client's close frame
	big := fmt.Sprintf(`{"op":%q}`, strings.Repeat("x", 100))
	if err := server.Write(ctx, duplex.MessageText, []byte(big)); err != nil {
		t.Fatalf("server Write: %v", err)
	}
	var v note
	err := wsjson.Read(ctx, client, &v)
	if got := duplex.CloseStatus(err); got != duplex.StatusMessageTooBig {
		t.Fatalf("Read of %d bytes with a limit of 64 = %v; want a CloseError 1009", len(big), err)
	}
}

// A context that ends while Read waits for a message returns its error
// and leaves the connection usable, as duplex.Conn.Read does.
func TestReadContextEndsTheWaitOnly(t *testing.T) {
	client, server := pair(t)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var v note
	if err := wsjson.Read(short, client, &v); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read with nothing to read = %v; want context.DeadlineExceeded", err)
	}
	ctx := testCtx(t)
	if err := wsjson.Write(ctx, server, note{Op: "late"}); err != nil {
		t.Fatalf("server Write: %v", err)
	}
	if err := wsjson.Read(ctx, client, &v); err != nil || v.Op != "late" {
		t.Fatalf("Read after the timeout = %+v, %v; want op late", v, err)
	}
}

// Writes from many goroutines arrive whole, each one message; a large
// value (beyond the pooled buffers' bound) among them too.
func TestConcurrentWritesAndLargeValues(t *testing.T) {
	client, server := pair(t)
	ctx := testCtx(t)
	const writers, each = 8, 50
	large := strings.Repeat("y", 200<<10)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := note{Op: fmt.Sprintf("w%d", w), N: i}
				if w == 0 && i == each/2 {
					v.Tags = []string{large}
				}
				if err := wsjson.Write(ctx, client, v); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := map[string]int{}
	sawLarge := false
	for range writers * each {
		var v note
		if err := wsjson.Read(ctx, server, &v); err != nil {
			t.Fatalf("server Read: %v", err)
		}
		if v.N != next[v.Op] {
			t.Fatalf("from %s got n=%d; want %d (in order per writer)", v.Op, v.N, next[v.Op])
		}
		next[v.Op]++
		if len(v.Tags) == 1 && v.Tags[0] == large {
			sawLarge = true
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Write: %v", err)
	}
	if !sawLarge {
		t.Fatal("the large value did not arrive intact")
	}
}
