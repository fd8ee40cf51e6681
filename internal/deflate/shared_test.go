package deflate

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
	"testing"
	"unsafe"
)

// TestStatelessCompressorShared: without context takeover every
// connection gets the same compressor for a level, with no state of its
// own, and many goroutines compressing with it at once each get a stream
// that inflates to their own message.
func TestStatelessCompressorShared(t *testing.T) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 6, flate.BestCompression} {
		a, b := NewCompressor(level, 15, false), NewCompressor(level, 15, false)
		if a != b || !a.Stateless() {
			t.Errorf("level %d: two compressors without takeover are %p and %p (stateless %v); want one shared", level, a, b, a.Stateless())
		}
	}
	if a, b := NewCompressor(1, 15, true), NewCompressor(1, 15, true); a == b {
		t.Error("compressors with context takeover are shared")
	}
	shared := NewCompressor(flate.BestSpeed, 15, false)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				msg := bytes.Repeat([]byte(fmt.Sprintf(`{"g":%d,"i":%d,"pad":"abcabcabc"}`, g, i)), 1+i%7)
				out, err := shared.Compress(nil, msg)
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(flate.NewReader(bytes.NewReader(append(out, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff))))
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("goroutine %d message %d: inflated %q (%v); want %q", g, i, got, err, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestParamsStringShared: the string of negotiated parameters is made
// once, however many connections agree on them.
func TestParamsStringShared(t *testing.T) {
	p := Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ClientMaxWindowBitsSet: true, ClientMaxWindowBits: 10}
	a, b := p.String(), p.String()
	if a != "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10" {
		t.Fatalf("String() = %q", a)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("two connections with the same parameters keep two copies of their string")
	}
}
