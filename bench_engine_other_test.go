//go:build !linux

package duplex

import "testing"

// benchEventStream has nothing to measure where there is no event loop.
func benchEventStream(b *testing.B, n int, stream []byte, compressed bool) {
	b.Run("Event", func(b *testing.B) { b.Skip("no event loop on this platform") })
}
