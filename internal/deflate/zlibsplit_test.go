package deflate

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestInflateFailsWhereZlibFails feeds damaged and truncated streams, the
// RFC 7692 trailer after them, byte by byte to the inflater and to zlib
// (testdata/zlibsplit.py): both must report the error at the same byte,
// or both reach the end. The streams are real ones with bytes changed;
// on some streams made up from scratch the two differ, by design: zlib
// reads a code length code with no code at all as coding zeros and fails
// later, at the missing end-of-block code, where the inflater fails at
// the first length it cannot decode; it checks a repeat code (16) with no
// previous length before its 2 extra bits, zlib after them; and it
// accepts a code length code of a single 1-bit code, as compress/flate
// does, where zlib refuses it.
func TestInflateFailsWhereZlibFails(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("DUPLEX_REQUIRE_ALL") != "" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 not found; DUPLEX_REQUIRE_ALL=1 makes this fail")
	}
	r := rand.New(rand.NewSource(7))
	streams, _ := flateStreams(t, messages(22, 6))
	var damaged [][]byte
	for _, s := range streams {
		if len(s) == 0 {
			continue
		}
		tries := 24
		if raceEnabled || testing.Short() {
			tries = 6
		}
		for i := range tries {
			d := bytes.Clone(s)
			switch i % 4 {
			case 0:
				d = d[:r.Intn(len(d))]
			case 1: // two bytes
				d[r.Intn(len(d))] ^= byte(1 + r.Intn(255))
				fallthrough
			default:
				d[r.Intn(len(d))] ^= byte(1 + r.Intn(255))
			}
			damaged = append(damaged, d)
		}
	}
	var in bytes.Buffer
	for _, d := range damaged {
		binary.Write(&in, binary.BigEndian, uint32(len(d)+len(trailer)))
		in.WriteString(string(d) + trailer)
	}
	cmd := exec.Command("python3", "testdata/zlibsplit.py")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zlibsplit.py: %v\n%s", err, stderr.Bytes())
	}
	verdicts := strings.Fields(string(out))
	if len(verdicts) != len(damaged) {
		t.Fatalf("zlibsplit.py gave %d verdicts for %d streams", len(verdicts), len(damaged))
	}
	f := new(inflater)
	failed := 0
	for i, d := range damaged {
		// Positions count bytes of d; len(d)+1 is its end, the trailer
		// included, where running out of input is found too.
		z, _ := strconv.Atoi(verdicts[i])
		if z > len(d) || z < 0 {
			z = len(d) + 1
		}
		got := feedPieces(f, d, nil, byteCuts(len(d)), 0, false)
		ours := 0
		switch {
		case got.err == io.EOF:
		case got.piece >= len(d):
			ours = len(d) + 1
		default:
			ours = got.piece + 1
		}
		if ours != z {
			t.Errorf("stream %x: the inflater says %v at byte %d; zlib at %d (0: no error, %d: at the end)", d, got.err, ours, z, len(d)+1)
		}
		if ours != 0 && ours <= len(d) {
			failed++
		}
	}
	if failed < len(damaged)/5 {
		t.Fatalf("only %d of %d streams failed before their end: the test checks little", failed, len(damaged))
	}
	t.Logf("%d streams, %d failed before their end", len(damaged), failed)
}
