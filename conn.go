package duplex

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/wire"
)

// MessageType is the type of a data message.
type MessageType int

// The two data message types of RFC 6455 §5.6.
const (
	MessageText   MessageType = MessageType(wire.OpText)
	MessageBinary MessageType = MessageType(wire.OpBinary)
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "invalid"
}

// transport is what a Conn runs over: any ordered byte stream with a close
// and deadlines. A hijacked TCP or TLS connection is one; an HTTP/2 stream
// (request body plus flushed response) is another.
type transport interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Conn is a WebSocket connection, from Accept or Dial.
//
// Concurrency: any number of goroutines may call Write, Writer, Ping and
// Close at once; messages never interleave. One goroutine at a time reads
// (Read or Reader); a second concurrent reader gets ErrConcurrentRead.
// Pings are answered and pongs and close frames are seen only while some
// goroutine reads, so keep one reading for as long as the connection lives.
//
// Contexts: a context bounds the call it is passed to. If it ends while
// Read or Reader waits for a message to begin, the call returns ctx.Err()
// and the connection stays usable (over TCP; an HTTP/2 stream cannot
// interrupt one read, so there the connection ends); likewise if it ends while Write waits
// its turn. If it ends after a message has begun to arrive, the stream
// cannot be resumed, so the connection is closed with StatusGoingAway; if
// it ends while a frame is going out, the frame is cut and the connection
// is dropped without a close frame (1006). Either way the call returns the
// CloseError. Cancelling the context of Dial or of the request passed to
// Accept after they return has no effect.
type Conn struct {
	tr           transport
	client       bool
	subprotocol  string
	extensions   string
	closeTimeout time.Duration

	// Read side, owned by whoever holds readSem.
	readSem   chan struct{}
	rd        bufReader
	readLimit atomic.Int64
	readCtx   context.Context // the context of the message being read
	ps        parser          // the engine: frame rules, limits, UTF-8, close
	wireDone  bool            // the message in progress has had its final frame
	msgDone   bool            // the message in progress was read to its end
	mr        msgReader
	pr        payloadReader
	decomp    *deflate.Decompressor // nil without permessage-deflate
	readOver  atomic.Bool           // the read side is over: failed, closed by the peer, or transport closed
	readEver  atomic.Bool           // the program has read: Close leaves reading to it

	// Write side. msgSem is held for a whole data message, frameSem while
	// one frame goes on the wire, so control frames can slip between the
	// frames of a long message.
	msgSem    chan struct{}
	frameSem  chan struct{}
	whdr      [wire.MaxHeaderSize]byte // guarded by frameSem
	wvec      [2][]byte                // guarded by frameSem
	wbufs     net.Buffers              // guarded by frameSem
	mw        msgWriter                // guarded by msgSem
	comp      *deflate.Compressor      // guarded by msgSem; nil without permessage-deflate
	threshold int                      // messages shorter than this go uncompressed

	closeMu   sync.Mutex
	closeSent bool          // guarded by closeMu
	closeErr  *CloseError   // guarded by closeMu; how the connection ended, set once
	peerClose chan struct{} // closed when the peer's close frame has been read
	done      chan struct{} // closed when the transport is closed
	closeOnce sync.Once

	pingMu  sync.Mutex
	pingSeq uint64                   // guarded by pingMu
	pings   map[uint64]chan struct{} // guarded by pingMu
}

type connConfig struct {
	tr           transport
	client       bool
	leftover     []byte // bytes read past the handshake
	subprotocol  string
	extensions   string
	readLimit    int64
	closeTimeout time.Duration
	comp         *deflate.Compressor
	decomp       *deflate.Decompressor
	threshold    int
}

const (
	defaultReadLimit    = 32 << 20
	defaultCloseTimeout = 5 * time.Second
)

func newConn(cfg connConfig) *Conn {
	c := &Conn{
		tr:           cfg.tr,
		client:       cfg.client,
		subprotocol:  cfg.subprotocol,
		extensions:   cfg.extensions,
		closeTimeout: cfg.closeTimeout,
		readSem:      make(chan struct{}, 1),
		msgSem:       make(chan struct{}, 1),
		frameSem:     make(chan struct{}, 1),
		peerClose:    make(chan struct{}),
		done:         make(chan struct{}),
		comp:         cfg.comp,
		decomp:       cfg.decomp,
		threshold:    cfg.threshold,
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = defaultCloseTimeout
	}
	if cfg.readLimit == 0 {
		cfg.readLimit = defaultReadLimit
	}
	c.readLimit.Store(cfg.readLimit)
	c.ps = parser{client: cfg.client, deflate: cfg.decomp != nil, limit: &c.readLimit}
	c.rd.src = cfg.tr
	if sc, ok := cfg.tr.(*net.TCPConn); ok && rawReads {
		c.rd.raw, _ = sc.SyscallConn()
	}
	c.rd.preload(cfg.leftover)
	c.mr.c = c
	c.pr.c = c
	c.mw.c = c
	c.msgDone = true
	return c
}

// Subprotocol returns the subprotocol agreed in the handshake, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Extensions returns the Sec-WebSocket-Extensions value agreed in the
// handshake, or "" when none was.
func (c *Conn) Extensions() string { return c.extensions }

// SetReadLimit sets the largest message, in bytes after decompression,
// that Read and Reader accept. A larger message closes the connection with
// StatusMessageTooBig. A limit of zero or less removes the bound.
// The default is 32 MiB.
func (c *Conn) SetReadLimit(n int64) { c.readLimit.Store(n) }

// LocalAddr and RemoteAddr return the transport's addresses when it has
// them (an HTTP/2 stream reports its connection's), or nil.
func (c *Conn) LocalAddr() net.Addr {
	if a, ok := c.tr.(interface{ LocalAddr() net.Addr }); ok {
		return a.LocalAddr()
	}
	return nil
}

// RemoteAddr: see LocalAddr.
func (c *Conn) RemoteAddr() net.Addr {
	if a, ok := c.tr.(interface{ RemoteAddr() net.Addr }); ok {
		return a.RemoteAddr()
	}
	return nil
}

// setErr records how the connection ended; the first record wins.
func (c *Conn) setErr(e *CloseError) *CloseError {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeErr == nil {
		c.closeErr = e
	}
	return c.closeErr
}

func (c *Conn) err() *CloseError {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeErr
}

// closeTransport closes the byte stream once and releases waiters.
func (c *Conn) closeTransport() {
	c.closeOnce.Do(func() {
		c.tr.Close()
		c.readOver.Store(true)
		close(c.done)
	})
}

// lock takes a one-slot semaphore, giving up when ctx ends or the
// connection is closed.
func (c *Conn) lock(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err()
	}
}

func unlock(sem chan struct{}) { <-sem }

func noStop() {}

// interruptRead and interruptWrite are interrupt for the transport's read
// and write sides; they cost nothing for a context that cannot end.
func (c *Conn) interruptRead(ctx context.Context) func() {
	if ctx.Done() == nil {
		return noStop
	}
	return interrupt(ctx, c.tr.SetReadDeadline)
}

func (c *Conn) interruptWrite(ctx context.Context) func() {
	if ctx.Done() == nil {
		return noStop
	}
	return interrupt(ctx, c.tr.SetWriteDeadline)
}

// interrupt arranges for the blocking transport call that follows to
// return when ctx ends, by moving a deadline into the past. The returned
// stop must be called once the call has returned; it clears the deadline
// if the interrupt fired.
func interrupt(ctx context.Context, set func(time.Time) error) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !cancel() {
			<-fired
			set(time.Time{})
		}
	}
}
