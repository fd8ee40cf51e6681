// Package flatecmp measures the two DEFLATE implementations duplex could
// use for permessage-deflate on the message the issue names: 1 KiB of
// compressible text, level 1, sync flush per message, both with a fresh
// window (no context takeover) and a carried one (takeover).
//
//	cd bench && go test -bench . -benchmem ./flatecmp
package flatecmp

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"testing"

	kpflate "github.com/klauspost/compress/flate"
)

// message is 1 KiB of JSON-like text, the kind chat and dashboards send.
var message = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1024; i++ {
		fmt.Fprintf(&b, `{"user":"u%03d","channel":"room-%d","text":"hello from duplex, message %d"},`, i%7, i%3, i)
	}
	return b.Bytes()[:1024]
}()

type writer interface {
	io.Writer
	Flush() error
	Reset(io.Writer)
}

func bench(b *testing.B, newWriter func(io.Writer) writer, takeover bool) {
	var out bytes.Buffer
	w := newWriter(&out)
	b.SetBytes(int64(len(message)))
	b.ReportAllocs()
	var total int
	for i := 0; i < b.N; i++ {
		out.Reset()
		if !takeover {
			w.Reset(&out)
		}
		w.Write(message)
		w.Flush()
		total += out.Len()
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/msg")
}

func BenchmarkCompress(b *testing.B) {
	for _, takeover := range []bool{false, true} {
		name := "no-takeover"
		if takeover {
			name = "takeover"
		}
		b.Run("stdlib/"+name, func(b *testing.B) {
			bench(b, func(o io.Writer) writer { w, _ := stdflate.NewWriter(o, 1); return w }, takeover)
		})
		b.Run("klauspost/"+name, func(b *testing.B) {
			bench(b, func(o io.Writer) writer { w, _ := kpflate.NewWriter(o, 1); return w }, takeover)
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	var comp bytes.Buffer
	w, _ := stdflate.NewWriter(&comp, 1)
	w.Write(message)
	w.Flush()
	payload := comp.Bytes()
	buf := make([]byte, 2048)
	b.Run("stdlib", func(b *testing.B) {
		r := stdflate.NewReader(bytes.NewReader(payload))
		b.SetBytes(int64(len(message)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.(stdflate.Resetter).Reset(bytes.NewReader(payload), nil)
			io.ReadAtLeast(r, buf, len(message))
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		r := kpflate.NewReader(bytes.NewReader(payload))
		b.SetBytes(int64(len(message)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.(kpflate.Resetter).Reset(bytes.NewReader(payload), nil)
			io.ReadAtLeast(r, buf, len(message))
		}
	})
}
