package testkit

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// A test waits for two reasons: to catch a hang, and to let slow work
// finish. A fixed deadline does both badly: long enough for a 16 MiB
// compressed echo under the race detector on a loaded machine, it makes a
// hang on a ping wait for minutes; short enough for the ping, it fails the
// echo whenever the machine is busy (issue 17). So a wait is given a base
// for the round trips plus time for the bytes it moves, at a rate far
// below what any machine does, and never more than what is left before
// go test's own -timeout, so that a failure is reported, not lost in the
// panic of a timed-out test binary.

const (
	// baseTimeout covers the round trips of one step: a dial, a ping, a
	// small echo, a close handshake.
	baseTimeout = 20 * time.Second

	// slowRate is the rate, in bytes a second, at which Timeout expects
	// work to go at worst: the race detector, compression and a machine
	// busy with other builds. Lightly loaded, a 2-core machine compresses
	// and echoes a 16 MiB message under -race (32 MiB moved) in about 7 s
	// (interop's TestGWS): near 20 times this rate.
	slowRate = 256 << 10

	// reportGrace is kept free before go test's -timeout so that a test
	// that gave up can still print its failure and clean up.
	reportGrace = 30 * time.Second
)

// slowdown multiplies every timeout; DUPLEX_TEST_SLOWDOWN sets it (a
// number >= 1) for machines slower than slowRate assumes.
func slowdown() float64 {
	f, err := strconv.ParseFloat(os.Getenv("DUPLEX_TEST_SLOWDOWN"), 64)
	if err != nil || f < 1 {
		return 1
	}
	return f
}

// Timeout is how long a test should wait for a step that moves n bytes
// (count both directions of an echo, and what a compressor reads as well
// as what it writes if the step is mostly compression): baseTimeout plus
// n at slowRate, times DUPLEX_TEST_SLOWDOWN.
func Timeout(n int) time.Duration {
	return Scale(baseTimeout) + ForBytes(n)
}

// ForBytes is the part of Timeout(n) that pays for the bytes: n at
// slowRate, times DUPLEX_TEST_SLOWDOWN. Add it to a wait whose fixed part
// is not a round trip (a browser starting, a page loading).
func ForBytes(n int) time.Duration {
	return Scale(time.Duration(float64(n) / slowRate * float64(time.Second)))
}

// Scale multiplies d by DUPLEX_TEST_SLOWDOWN, for a wait that has its own
// base.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * slowdown())
}

// Cutoff is the time by which a test must have given up, to have time
// left to report and clean up: reportGrace (or a quarter of what is left,
// if less) before go test's -timeout. Without a -timeout it is a day away.
// A run of many steps, each with its own Deadline, is bounded by Cutoff
// alone: its steps catch a hang, and the sum of their worst cases would
// be no bound at all.
func Cutoff(t testing.TB) time.Time {
	if td, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := td.Deadline(); ok {
			return end.Add(-min(reportGrace, time.Until(end)/4))
		}
	}
	return time.Now().Add(24 * time.Hour)
}

// Deadline is when a step of n bytes that starts now should be over:
// now plus Timeout(n), but no later than reportGrace before t's deadline
// (go test -timeout), so that the step fails with its own message while
// there is time to print it.
func Deadline(t testing.TB, n int) time.Time {
	d := time.Now().Add(Timeout(n))
	if end := Cutoff(t); end.Before(d) {
		return end
	}
	return d
}

// Wait is Timeout(n), cut to end at Deadline(t, n): the duration to give
// a select's time.After for a step of n bytes.
func Wait(t testing.TB, n int) time.Duration {
	return time.Until(Deadline(t, n))
}

// Context returns a context for a step of n bytes that ends at
// Deadline(t, n). It is cancelled, at the latest, when the test ends.
func Context(t testing.TB, n int) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(context.Background(), Deadline(t, n))
	t.Cleanup(cancel)
	return ctx, cancel
}

// ScriptEnv returns the environment variables that give a peer script
// (interop/node, interop/python) the same waits as Timeout, and the time
// its whole run must end by, Cutoff(t):
//
//	DUPLEX_TEST_WAIT_MS  a step's base wait, in milliseconds
//	DUPLEX_TEST_RATE     bytes a second to allow for a step's bytes
//	DUPLEX_TEST_RUN_MS   how long the script may run in all
//
// A script waits DUPLEX_TEST_WAIT_MS + n*1000/DUPLEX_TEST_RATE for a step
// of n bytes.
func ScriptEnv(t testing.TB) []string {
	f := slowdown()
	return []string{
		fmt.Sprintf("DUPLEX_TEST_WAIT_MS=%d", int64(float64(baseTimeout.Milliseconds())*f)),
		fmt.Sprintf("DUPLEX_TEST_RATE=%d", int64(slowRate/f)),
		fmt.Sprintf("DUPLEX_TEST_RUN_MS=%d", time.Until(Cutoff(t)).Milliseconds()),
	}
}
