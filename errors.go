package duplex

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Errors returned by this package. A connection that has ended returns a
// *CloseError instead; these say what went wrong inside it.
var (
	// ErrReadLimit is wrapped in the CloseError (1009) returned when a
	// message, after decompression, is larger than the read limit.
	ErrReadLimit = errors.New("duplex: message exceeds read limit")

	// ErrProtocol is wrapped in the CloseError (1002) returned when the peer
	// breaks RFC 6455; the wrapped text names the rule.
	ErrProtocol = errors.New("duplex: protocol violation")

	// ErrInvalidUTF8 is wrapped in the CloseError (1007) returned when a
	// text message or a close reason is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("duplex: invalid UTF-8 in text")

	// ErrCloseTimeout is wrapped in the CloseError returned by Close when
	// the peer did not answer the close frame in time.
	ErrCloseTimeout = errors.New("duplex: close handshake timed out")

	// ErrConcurrentRead is returned by Read and Reader when another
	// goroutine is already reading. A Conn has one reader at a time.
	ErrConcurrentRead = errors.New("duplex: concurrent read")

	// ErrWouldBlock is returned by EventConn's TryWrite, TryPing and
	// TryWritePreparedBatch when the socket's buffer is full, or a waiting
	// write of the connection waits for room in it: the call would have
	// to wait, and does not.
	ErrWouldBlock = errors.New("duplex: the socket would block")
)

// HandshakeError is returned by Dial when the server did not accept the
// WebSocket handshake, and by Accept when it refused a request (then only
// StatusCode and Body are set). It holds the status and the start of the body (at
// most 1 KiB) so the refusal can be shown to a person.
type HandshakeError struct {
	StatusCode int
	Body       []byte
	Response   *http.Response
	Err        error // what was wrong with the response
}

func (e *HandshakeError) Error() string {
	s := "duplex: handshake refused"
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if body := strings.TrimSpace(string(e.Body)); body != "" {
		s += ": " + body
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HandshakeError) Unwrap() error { return e.Err }
