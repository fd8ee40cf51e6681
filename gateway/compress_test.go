package gateway

import (
	"bytes"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/duplexws/duplex"
)

// TestCompressionWindowBits: with context takeover, --compress-window-bits
// answers a browser-like offer (client_max_window_bits without a value)
// with the smaller window both ways, and similar messages, which refer
// back across the window, round-trip. Both ends inflate strictly, so a
// compressor that ignored the window would fail the connection with 1007.
func TestCompressionWindowBits(t *testing.T) {
	forEachKind(t, func(t *testing.T, k sessionKindCase) {
		for _, takeover := range []bool{true, false} {
			bits := 10
			want := "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
			if !takeover {
				// Nothing is kept between messages: the default window
				// is not asked for.
				bits = 15
				want = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
			}
			ts := k.start(t, Options{NoAuth: true, CompressionContextTakeover: takeover, CompressionWindowBits: bits})
			c := dial(t, ts.ws+"/echo", &duplex.DialOptions{Compression: &duplex.CompressionOptions{}})
			if got := c.Extensions(); got != want {
				t.Fatalf("takeover=%v: extensions %q; want %q", takeover, got, want)
			}
			for i := range 60 {
				var b strings.Builder
				for j := range 5 + i%30 {
					fmt.Fprintf(&b, `{"channel":"prices","seq":%d,"data":{"symbol":"S%d","bid":%d}},`, i, j%9, i*j%101)
				}
				msg := []byte(b.String())
				if _, p := roundTrip(t, c, duplex.MessageText, msg); !bytes.Equal(p, msg) {
					t.Fatalf("takeover=%v: message %d: echo differs", takeover, i)
				}
			}
			c.Close(duplex.StatusNormalClosure, "")
		}
	})
}

// TestCompressionWindowBitsOption checks the flag, its variable, its
// default in --help and the range check.
func TestCompressionWindowBitsOption(t *testing.T) {
	o, err := parse(t, map[string]string{"DUPLEX_COMPRESS_WINDOW_BITS": "9"})
	if err != nil || o.CompressionWindowBits != 9 {
		t.Errorf("DUPLEX_COMPRESS_WINDOW_BITS=9: %d, %v; want 9", o.CompressionWindowBits, err)
	}
	o, err = parse(t, map[string]string{"DUPLEX_COMPRESS_WINDOW_BITS": "9"}, "--compress-window-bits", "12")
	if err != nil || o.CompressionWindowBits != 12 {
		t.Errorf("--compress-window-bits 12: %d, %v; want 12", o.CompressionWindowBits, err)
	}
	for _, bad := range []string{"7", "16", "0", "-1", "ten"} {
		if _, err := parse(t, nil, "--compress-window-bits", bad); err == nil || !strings.Contains(err.Error(), "8 to 15") {
			t.Errorf("--compress-window-bits %s: %v; want an error that says 8 to 15", bad, err)
		}
		if _, err := parse(t, map[string]string{"DUPLEX_COMPRESS_WINDOW_BITS": bad}); err == nil || !strings.Contains(err.Error(), "DUPLEX_COMPRESS_WINDOW_BITS") {
			t.Errorf("DUPLEX_COMPRESS_WINDOW_BITS=%s: %v; want an error naming the variable", bad, err)
		}
	}
	for _, bits := range []int{7, 16, -3} {
		if _, err := New(Options{CompressionWindowBits: bits, CompressionContextTakeover: true}, nil); err == nil || !strings.Contains(err.Error(), "want 8 to 15") {
			t.Errorf("New with CompressionWindowBits %d: %v; want an error", bits, err)
		}
	}
	// A window without takeover would do nothing: say so.
	if _, err := New(Options{CompressionWindowBits: 10}, nil); err == nil || !strings.Contains(err.Error(), "needs --compress-context-takeover") {
		t.Errorf("New with CompressionWindowBits 10 and no takeover: %v; want an error", err)
	}

	var d Options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	d.RegisterFlags(fs)
	fs.PrintDefaults()
	if help := out.String(); !strings.Contains(help, "-compress-window-bits n") || !strings.Contains(help, "$DUPLEX_COMPRESS_WINDOW_BITS") || !strings.Contains(help, "(default 15)") {
		t.Errorf("help lacks --compress-window-bits with its variable and default:\n%s", help)
	}
}
