// Package flatecmp measures the DEFLATE implementations duplex could use
// for permessage-deflate on the messages of issue 8: 1 KiB of
// compressible text, level 1, sync flush per message, with a fresh window
// (no context takeover) and a carried one (takeover). It compares
// compress/flate, klauspost/compress and duplex's own codec
// (internal/deflate, which compress/flate backs at other levels). json and
// words send one message over and over; feed sends 64 different ones.
//
//	cd bench && go test -bench . -benchmem -benchtime 20000x ./flatecmp
package flatecmp

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/duplexws/duplex/internal/deflate"
	kpflate "github.com/klauspost/compress/flate"
)

// messages are 1 KiB of text: JSON-like records, the kind chat and
// dashboards send, and random words from a small vocabulary, which is what
// `duplex bench --text` sends. Each is sent over and over, the best case
// for context takeover. feed is a stream of 64 different JSON messages
// (64 KiB, twice the window), as a ticker or chat room sends: similar
// keys, different values, so takeover gains what the messages share.
var messages = []struct {
	name string
	data []byte
}{
	{"json", func() []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < 1024; i++ {
			fmt.Fprintf(&b, `{"user":"u%03d","channel":"room-%d","text":"hello from duplex, message %d"},`, i%7, i%3, i)
		}
		return b.Bytes()[:1024]
	}()},
	{"words", func() []byte {
		words := []string{
			"the", "message", "user", "channel", "id", "time", "hello", "world",
			"status", "ok", "event", "update", "data", "value", "name", "type",
			"duplex", "frame", "server", "client", "ping", "text", "true", "false",
			"null", "count", "page", "item", "price", "order", "created", "2025",
		}
		r := rand.New(rand.NewPCG(1, 0x5eed))
		var b []byte
		for len(b) < 1024 {
			b = append(b, words[r.IntN(len(words))]...)
			b = append(b, ' ')
		}
		return b[:1024]
	}()},
}

var feed = func() [][]byte {
	r := rand.New(rand.NewPCG(2, 0xfeed))
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace"}
	words := []string{"price", "update", "order", "filled", "cancelled", "open", "closed", "pending"}
	var out [][]byte
	for i := range 64 {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"type":"event","seq":%d,"items":[`, 1000+i)
		for b.Len() < 1024 {
			fmt.Fprintf(&b, `{"who":%q,"what":%q,"qty":%d,"px":%d.%02d},`,
				users[r.IntN(len(users))], words[r.IntN(len(words))], r.IntN(1000), 100+r.IntN(50), r.IntN(100))
		}
		out = append(out, b.Bytes()[:1024])
	}
	return out
}()

type writer interface {
	io.Writer
	Flush() error
	Reset(io.Writer)
}

func benchWriter(b *testing.B, msgs [][]byte, newWriter func(io.Writer) writer, takeover bool) {
	var out bytes.Buffer
	w := newWriter(&out)
	b.SetBytes(int64(len(msgs[0])))
	b.ReportAllocs()
	var total int
	for i := 0; i < b.N; i++ {
		out.Reset()
		if !takeover {
			w.Reset(&out)
		}
		w.Write(msgs[i%len(msgs)])
		w.Flush()
		total += out.Len() - 4 // the tail RFC 7692 removes
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/msg")
}

func BenchmarkCompress(b *testing.B) {
	sets := []struct {
		name string
		data [][]byte
	}{{"feed", feed}}
	for _, m := range messages {
		sets = append(sets, struct {
			name string
			data [][]byte
		}{m.name, [][]byte{m.data}})
	}
	for _, m := range sets {
		for _, takeover := range []bool{false, true} {
			name := m.name + "/no-takeover"
			if takeover {
				name = m.name + "/takeover"
			}
			b.Run(name+"/stdlib", func(b *testing.B) {
				benchWriter(b, m.data, func(o io.Writer) writer { w, _ := stdflate.NewWriter(o, 1); return w }, takeover)
			})
			b.Run(name+"/klauspost", func(b *testing.B) {
				benchWriter(b, m.data, func(o io.Writer) writer { w, _ := kpflate.NewWriter(o, 1); return w }, takeover)
			})
			b.Run(name+"/duplex", func(b *testing.B) {
				// One Compressor, as a connection keeps.
				c := deflate.NewCompressor(1, 15, takeover)
				var out []byte
				var total int
				b.SetBytes(int64(len(m.data[0])))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					out, _ = c.Compress(out[:0], m.data[i%len(m.data)])
					total += len(out)
				}
				b.ReportMetric(float64(total)/float64(b.N), "bytes/msg")
			})
		}
	}
}

// BenchmarkDecompress inflates each message as compressed at level 1 by
// compress/flate, which is what `duplex bench` sends, without takeover.
func BenchmarkDecompress(b *testing.B) {
	for _, m := range messages {
		var comp bytes.Buffer
		w, _ := stdflate.NewWriter(&comp, 1)
		w.Write(m.data)
		w.Flush()
		payload := comp.Bytes()
		buf := make([]byte, 2048)
		b.Run(m.name+"/stdlib", func(b *testing.B) {
			src := bytes.NewReader(payload)
			r := stdflate.NewReader(src)
			b.SetBytes(int64(len(m.data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				src.Reset(payload)
				r.(stdflate.Resetter).Reset(src, nil)
				io.ReadAtLeast(r, buf, len(m.data))
			}
		})
		b.Run(m.name+"/klauspost", func(b *testing.B) {
			src := bytes.NewReader(payload)
			r := kpflate.NewReader(src)
			b.SetBytes(int64(len(m.data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				src.Reset(payload)
				r.(kpflate.Resetter).Reset(src, nil)
				io.ReadAtLeast(r, buf, len(m.data))
			}
		})
		b.Run(m.name+"/duplex", func(b *testing.B) {
			// The whole message, to its end: the payload without the
			// tail, as a WebSocket frame carries it.
			d := deflate.NewDecompressor(15, false)
			src := bytes.NewReader(nil)
			b.SetBytes(int64(len(m.data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				src.Reset(payload[:len(payload)-4])
				r := d.Reader(src)
				for {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
				d.Done()
			}
		})
	}
}
