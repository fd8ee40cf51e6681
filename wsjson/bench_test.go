package wsjson_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/duplexws/duplex/wsjson"
)

// BenchmarkRoundTrip writes a value and reads it back on the other end of
// a loopback connection: json's cost plus one message each way of the
// connection's. The pooled buffers show in allocs/op.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tags := range []int{1, 100} {
		b.Run(strconv.Itoa(tags)+"tags", func(b *testing.B) {
			client, server := pair(b)
			ctx := context.Background()
			v := note{Op: "bench", N: 1}
			for i := range tags {
				v.Tags = append(v.Tags, "tag-"+strconv.Itoa(i))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := wsjson.Write(ctx, client, v); err != nil {
					b.Fatal(err)
				}
				var got note
				if err := wsjson.Read(ctx, server, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
