package deflate

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// zlibPeer runs testdata/zlibpeer.py, a peer built on zlib, over msgs.
// zlib's inflater enforces the window size it is given, which
// compress/flate's does not, so this is what checks that a Compressor keeps
// to a window below 15 bits.
func zlibPeer(t *testing.T, mode string, bits int, msgs [][]byte) [][]byte {
	t.Helper()
	python := testkit.RequireTool(t, "python3")
	var in bytes.Buffer
	for _, m := range msgs {
		binary.Write(&in, binary.BigEndian, uint32(len(m)))
		in.Write(m)
	}
	cmd := exec.Command(python, "testdata/zlibpeer.py", mode, fmt.Sprint(bits))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zlib peer: %v\n%s", err, stderr.Bytes())
	}
	var res [][]byte
	for len(out) >= 4 {
		n := binary.BigEndian.Uint32(out)
		res = append(res, out[4:4+n])
		out = out[4+n:]
	}
	if len(res) != len(msgs) {
		t.Fatalf("zlib peer returned %d messages for %d", len(res), len(msgs))
	}
	return res
}

// TestZlibInflatesOurs sends our messages to a zlib inflater whose window is
// exactly the negotiated one.
func TestZlibInflatesOurs(t *testing.T) {
	msgs := messages(8, 150)
	for bits := 8; bits <= 15; bits++ {
		for _, level := range []int{flate.BestSpeed, flate.BestCompression} {
			c := NewCompressor(level, bits, true)
			compressed := make([][]byte, len(msgs))
			for i, m := range msgs {
				compressed[i], _ = c.Compress(nil, m)
			}
			for i, got := range zlibPeer(t, "inflate", bits, compressed) {
				if !bytes.Equal(got, msgs[i]) {
					t.Fatalf("bits %d, level %d: zlib inflated message %d wrong", bits, level, i)
				}
			}
		}
	}
}

// TestOursInflatesZlib reads a zlib deflater with context takeover, for
// every window size, with the history NewDecompressor keeps for it.
func TestOursInflatesZlib(t *testing.T) {
	msgs := messages(9, 150)
	for bits := 8; bits <= 15; bits++ {
		d := NewDecompressor(bits, true)
		for i, c := range zlibPeer(t, "deflate", bits, msgs) {
			got, err := io.ReadAll(d.Reader(bytes.NewReader(c)))
			d.Done()
			if err != nil || !bytes.Equal(got, msgs[i]) {
				t.Fatalf("bits %d: message %d: %v", bits, i, err)
			}
		}
	}
}
