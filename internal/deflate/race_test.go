//go:build race

package deflate

// raceEnabled is set under the race detector, whose sync.Pool drops a
// quarter of what is put in it, so allocation counts mean nothing.
const raceEnabled = true
