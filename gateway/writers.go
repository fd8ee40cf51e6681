package gateway

import (
	"runtime"
	"sync"
)

// writers is the gateway's pool of goroutines that write what event
// sessions have queued (session_event.go). A session with something to
// send waits in line once, however many messages it has; a writer takes
// it, writes its whole queue without waiting (the duplex.EventConn Try*
// calls), and puts it back at the end of the line if more came meanwhile.
// So:
//
//   - a fan-out to 10,000 sessions, or a heartbeat round over all of
//     them, runs on at most GOMAXPROCS goroutines, not one per session;
//   - while the writers are busy, messages gather in the queues of the
//     sessions waiting in line, and go out several to a system call;
//   - a client whose socket is full does not hold a writer: its queue is
//     handed to a goroutine of its own, which waits (writeLoop).
//
// Writers end when the line is empty, so an idle gateway runs none.
type writers struct {
	mu      sync.Mutex
	line    []*eventSession // guarded by mu; waiting sessions from head on
	head    int             // guarded by mu
	running int             // guarded by mu
	max     int
}

func newWriters() *writers { return &writers{max: max(runtime.GOMAXPROCS(0), 1)} }

// push puts s at the end of the line, and starts a writer if fewer than
// max run. s is in the line at most once: its queue's owner pushes it.
func (w *writers) push(s *eventSession) {
	w.mu.Lock()
	w.line = append(w.line, s)
	start := w.running < w.max
	if start {
		w.running++
	}
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// run writes the sessions in line until there is none.
func (w *writers) run() {
	for {
		w.mu.Lock()
		if w.head == len(w.line) {
			w.running--
			w.line, w.head = w.line[:0], 0
			if cap(w.line) > 4096 {
				w.line = nil // a burst's array is not kept
			}
			w.mu.Unlock()
			return
		}
		s := w.line[w.head]
		w.line[w.head] = nil
		w.head++
		if w.head >= 1024 && w.head >= len(w.line)/2 {
			// The line never emptied: move what waits to the front.
			n := copy(w.line, w.line[w.head:])
			clear(w.line[n:])
			w.line, w.head = w.line[:n], 0
		}
		w.mu.Unlock()
		s.writeRound()
	}
}
