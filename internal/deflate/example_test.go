package deflate_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"

	"github.com/duplexws/duplex/internal/deflate"
)

// A server answers a browser's offer, and the client checks the answer.
func ExampleAccept() {
	offered := deflate.Offer(deflate.Config{})
	fmt.Println("offer:   ", offered)

	offers := deflate.ParseOffers([]string{offered.String()})
	resp, ok := deflate.Accept(offers, deflate.Config{NoContextTakeover: true})
	fmt.Println("response:", resp, ok)

	agreed, ok, err := deflate.ParseResponse([]string{resp.String()}, offered)
	fmt.Println("client:  ", agreed == resp, ok, err)
	// Output:
	// offer:    permessage-deflate; client_max_window_bits
	// response: permessage-deflate; server_no_context_takeover; client_no_context_takeover true
	// client:   true true <nil>
}

// With context takeover the second message refers to the first, so it
// compresses to a few bytes, even at level 1.
func ExampleCompressor() {
	c := deflate.NewCompressor(flate.BestSpeed, 15, true)
	d := deflate.NewDecompressor(15, true)
	for _, msg := range []string{
		`{"type":"price","symbol":"ACME","bid":101.5,"ask":101.7}`,
		`{"type":"price","symbol":"ACME","bid":101.5,"ask":101.8}`,
	} {
		payload, _ := c.Compress(nil, []byte(msg))
		got, _ := io.ReadAll(d.Reader(bytes.NewReader(payload)))
		d.Done()
		fmt.Println(len(msg), "->", len(payload), string(got) == msg)
	}
	empty, _ := c.Compress(nil, nil)
	fmt.Printf("empty message: % x\n", empty)
	// Output:
	// 56 -> 54 true
	// 56 -> 6 true
	// empty message: 00
}
