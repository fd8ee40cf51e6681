package duplex

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/duplexws/duplex/internal/deflate"
	"github.com/duplexws/duplex/internal/utf8"
	"github.com/duplexws/duplex/internal/wire"
)

// The protocol engine's read half. A parser is fed the bytes of the
// stream, in place, and says what they mean; it never reads a socket.
// Conn's reader and EventConn's event loop are its two drivers: they
// supply the bytes and carry out what it decides (answer a ping, deliver
// a message, send a close frame and end), so every frame rule, the read
// limit, UTF-8, the inflate checks and the steps of the close handshake
// are written once, here (issue 12).

// evKind is what a parser found in the bytes it was fed.
type evKind uint8

const (
	// evMore: the bytes end inside a frame header or a control frame;
	// feed them again with more after them, ev.need bytes in all.
	evMore evKind = iota
	// evFrame: the header of a data frame. ev.first for the first frame
	// of a message, which also gives its type and compression.
	evFrame
	// evData: payload of the data frame in progress, unmasked in place;
	// for a compressed message, the next inflated bytes (ev.compressed),
	// which point into the inflater and are valid until the next call,
	// and may be none. ev.end with the last bytes of the message; ev.first
	// too when they are the whole message (parser.whole).
	evData
	evPing  // ev.p is the payload to send back in a pong
	evPong  // ev.p is the payload
	evClose // the peer's close frame: ev.code, ev.reason
	evFail  // the peer broke a rule: fail with ev.code, ev.err
)

// event is one thing a parser found. p points into the bytes fed. One is
// made for every frame, so what only a close or a failure needs is behind
// a pointer.
type event struct {
	p          []byte
	need       int32
	code       StatusCode
	kind       evKind
	op         wire.Opcode // the message's type, for evFrame and evData
	first      bool
	end        bool
	compressed bool
	*eventDetail
}

// eventDetail is the rest of an evClose or evFail.
type eventDetail struct {
	reason string // the peer's close reason
	err    error  // why we fail
}

// parser is the state of the read side of one connection. Between
// messages it holds nothing but its configuration, so a driver that keeps
// no state for idle connections may make one on the stack.
type parser struct {
	client  bool                  // we are the client: frames must be unmasked
	deflate bool                  // permessage-deflate was negotiated
	decomp  *deflate.Decompressor // with deflate: the peer's compressed stream
	// zshared: without context takeover, the connection's shared
	// decompressor (deflate.SharedDecompressor) while decomp is a working
	// one taken for the compressed message in progress.
	zshared *deflate.Decompressor
	limit   *atomic.Int64 // the read limit; 0 or less for none
	// whole: a message that is all in the bytes fed comes as one evData
	// with first and end set, and no evFrame, for a driver that delivers
	// whole messages from its buffer.
	whole bool

	hdr     wire.Header // the data frame in progress
	inFrame bool        // hdr's payload is being read
	left    int64       // payload bytes of hdr still to come
	maskPos int
	msg     msgState // the data message in progress on the wire
	// zmore: the inflater may have more output from the bytes it took,
	// which it gives before it is fed more.
	zmore bool
	out   int64 // decompressed bytes of the compressed message so far
	text  utf8.Validator
	done  bool // a close frame or a failure ended the input
}

// idle reports whether p is between messages, holding no state.
func (p *parser) idle() bool { return !p.inFrame && p.msg.op == 0 }

// next parses the start of in, puts the first thing found there in ev
// (the caller's, so nothing is copied per frame) and returns how many
// bytes of in it used. Inside the payload of a data frame it gives that
// payload, as much as in holds of it; otherwise a whole header, a whole
// control frame (or with whole set, a whole message), or evMore.
func (p *parser) next(in []byte, ev *event) int {
	if p.zmore {
		*ev = p.inflate(nil, false)
		return 0
	}
	if p.inFrame && p.msg.rsv1 {
		return p.feed(in, ev)
	}
	if p.inFrame {
		k := min(int64(len(in)), p.left)
		if k == 0 && p.left > 0 {
			*ev = event{kind: evMore, need: 1}
			return 0
		}
		*ev = p.payload(in[:k])
		return int(k)
	}
	if len(in) < 2 {
		*ev = event{kind: evMore, need: 2}
		return 0
	}
	hn := wire.HeaderSize(in[1])
	if len(in) < hn {
		*ev = event{kind: evMore, need: int32(hn)}
		return 0
	}
	h, n, err := wire.Parse(in)
	if err != nil {
		*ev = p.fail(StatusProtocolError, err)
		return 0
	}
	if code, err := checkFrame(&h, p.client, p.deflate, p.msg, p.limit.Load()); err != nil {
		*ev = p.fail(code, err)
		return 0
	}
	if h.Opcode.IsControl() {
		total := n + int(h.Length)
		if len(in) < total {
			*ev = event{kind: evMore, need: int32(total)}
			return 0
		}
		b := in[n:total]
		if h.Masked {
			wire.Mask(h.Key, 0, b)
		}
		*ev = p.control(h.Opcode, b)
		return total
	}
	first := h.Opcode != wire.OpContinuation
	if p.whole && first && h.Fin && h.RSV == 0 && int64(len(in)-n) >= h.Length {
		// A whole unfragmented, uncompressed message: one event, and no
		// state to keep.
		end := n + int(h.Length)
		b := in[n:end]
		if h.Masked {
			wire.Mask(h.Key, 0, b)
		}
		if h.Opcode == wire.OpText && !utf8.Valid(b) {
			*ev = p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
			return 0
		}
		*ev = event{kind: evData, p: b, op: h.Opcode, first: true, end: true}
		return end
	}
	if first {
		p.msg = msgState{op: h.Opcode, rsv1: h.RSV&wire.RSV1 != 0}
		p.text.Reset()
		p.out = 0
		if p.msg.rsv1 {
			if p.decomp.Shared() {
				p.zshared, p.decomp = p.decomp, p.decomp.Take()
			}
			p.decomp.Begin(p.limit.Load())
		}
	}
	p.msg.raw += h.Length
	if limit := p.limit.Load(); p.msg.rsv1 && limit > 0 && p.msg.raw > limit+limit/64+1024 {
		// Deflate expands incompressible data by a few bytes in a
		// thousand: a compressed message this long inflates past the
		// limit, so it is refused before its payload is read.
		*ev = p.fail(StatusMessageTooBig, ErrReadLimit)
		return 0
	}
	p.hdr, p.inFrame, p.left, p.maskPos = h, true, h.Length, 0
	*ev = event{kind: evFrame, first: first, compressed: p.msg.rsv1, op: p.msg.op}
	return n
}

// payload takes the next bytes of the data frame in progress, at most
// p.left, which the driver may have read straight into a buffer of its
// own: they are unmasked in place. Called with no bytes when p.left is 0,
// it ends the frame.
func (p *parser) payload(b []byte) event {
	if p.hdr.Masked {
		p.maskPos = wire.Mask(p.hdr.Key, p.maskPos, b)
	}
	p.left -= int64(len(b))
	if p.msg.op == wire.OpText && !p.msg.rsv1 && !p.text.Write(b) {
		// §8.1: fail at the first byte that is not UTF-8.
		return p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	ev := event{kind: evData, p: b, op: p.msg.op, compressed: p.msg.rsv1}
	if p.left > 0 {
		return ev
	}
	p.inFrame = false
	if !p.hdr.Fin {
		return ev
	}
	if p.msg.op == wire.OpText && !p.msg.rsv1 && !p.text.Complete() {
		return p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	ev.end = true
	p.msg = msgState{}
	return ev
}

// feed gives the inflater the next bytes of a compressed message's
// payload as they arrive, unmasked in place, as many as it takes at once
// so that none is unmasked twice; the last byte of the message says the
// end. So corrupt data and an inflated size past the limit are found at
// the byte that shows them, whatever the driver and however the bytes
// come (issue 12).
func (p *parser) feed(in []byte, ev *event) int {
	k := min(int64(len(in)), p.left, int64(p.decomp.Room()))
	if k == 0 && p.left > 0 {
		*ev = event{kind: evMore, need: 1}
		return 0
	}
	b := in[:k]
	if p.hdr.Masked {
		p.maskPos = wire.Mask(p.hdr.Key, p.maskPos, b)
	}
	p.left -= k
	end := p.left == 0 && p.hdr.Fin
	if p.left == 0 {
		p.inFrame = false
	}
	*ev = p.inflate(b, end)
	return int(k)
}

// inflate feeds the inflater b, all of which it takes, and says what came
// of it: evData with the output, if any, or at the end of the message; or
// evFail.
func (p *parser) inflate(b []byte, end bool) event {
	n, out, err := p.decomp.Inflate(b, end)
	if n != len(b) {
		return p.fail(StatusInternalError, errors.New("duplex: inflater took part of its input"))
	}
	p.zmore = len(out) > 0
	switch {
	case len(out) > 0:
		return p.inflated(out)
	case err == nil:
		return event{kind: evData, op: p.msg.op, compressed: true}
	case err == io.EOF:
		if p.msg.op == wire.OpText && !p.text.Complete() {
			return p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
		}
		p.decomp.Done()
		p.giveBackDecompressor()
		ev := event{kind: evData, op: p.msg.op, compressed: true, end: true}
		p.msg = msgState{}
		return ev
	case errors.Is(err, deflate.ErrLimit):
		return p.fail(StatusMessageTooBig, ErrReadLimit)
	}
	// RFC 7692 §8.2.1 leaves the code open; 1007 says the payload was
	// bad, as for text that is not UTF-8.
	return p.fail(StatusInvalidFramePayloadData, err)
}

// inflated checks the next decompressed bytes of the compressed message:
// the read limit applies to its decompressed size, and text must be
// UTF-8. It returns evData or evFail. Past the limit, the bytes within it
// are checked first, so that the verdict does not depend on how the
// output was cut.
func (p *parser) inflated(b []byte) event {
	p.out += int64(len(b))
	if limit := p.limit.Load(); limit > 0 && p.out > limit {
		within := b[:int64(len(b))-min(p.out-limit, int64(len(b)))]
		if p.msg.op == wire.OpText && !p.text.Write(within) {
			return p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
		}
		return p.fail(StatusMessageTooBig, ErrReadLimit)
	}
	if p.msg.op == wire.OpText && !p.text.Write(b) {
		return p.fail(StatusInvalidFramePayloadData, ErrInvalidUTF8)
	}
	return event{kind: evData, p: b, op: p.msg.op, compressed: true}
}

// control acts on a whole ping, pong or close frame.
func (p *parser) control(op wire.Opcode, b []byte) event {
	switch op {
	case wire.OpPing:
		// §5.5.2: answered with a pong carrying the same payload.
		return event{kind: evPing, p: b}
	case wire.OpPong:
		// §5.5.3: a pong may be unsolicited; the driver decides.
		return event{kind: evPong, p: b}
	}
	code, reason, failCode, err := parseClose(b)
	if err != nil {
		return p.fail(failCode, err)
	}
	p.stop()
	return event{kind: evClose, code: StatusCode(code), eventDetail: &eventDetail{reason: reason}}
}

// fail ends the input: nothing after a violation is parsed.
func (p *parser) fail(code StatusCode, err error) event {
	p.stop()
	return event{kind: evFail, code: code, eventDetail: &eventDetail{err: err}}
}

// stop ends the input, giving back the inflater of a message cut short.
func (p *parser) stop() {
	p.done = true
	p.zmore = false
	if p.decomp != nil {
		p.decomp.Done()
		p.giveBackDecompressor()
	}
}

// giveBackDecompressor returns the working decompressor of a message
// that has ended, if it was taken for it, and puts the shared one back.
func (p *parser) giveBackDecompressor() {
	if p.zshared != nil {
		deflate.ReleaseDecompressor(p.decomp)
		p.decomp, p.zshared = p.zshared, nil
	}
}

// closeReply is the payload of our answer to the peer's close frame with
// code: the same code (§5.5.1), or nothing when the peer sent none. It is
// also the payload of the close frame we fail a connection with.
func closeReply(code StatusCode) []byte {
	if uint16(code) == wire.NoStatus {
		return nil
	}
	return wire.AppendClose(nil, uint16(code), "")
}

// endStep is what a transport does once the read side has ended, decided
// here once for both drivers.
type endStep struct {
	// halfClose: shut down our sending side at once, so the peer reads
	// our close frame and then EOF and sees the connection end now
	// (§7.1.7), while bytes still arriving cannot turn the close into a
	// reset that loses it.
	halfClose bool
	// linger: drop whatever still arrives until the peer closes the TCP
	// connection, for at most the close timeout, then close. Without it
	// the transport is closed at once.
	linger bool
}

// endStepFor says how the connection ends after the peer's close frame
// was answered (peerClosed) or after we failed it. RFC 6455 §7.1.1: the
// server should close the TCP connection first, the client waits for
// that. So a server that answered a close closes at once; a client
// lingers until the server closes; after a failure a server half-closes
// and lingers, and a client lingers. In every case the program sees the
// end at once: the lingering is the transport's, in the background.
func endStepFor(client, peerClosed bool) endStep {
	switch {
	case peerClosed && !client:
		return endStep{}
	case peerClosed:
		return endStep{linger: true}
	case !client:
		return endStep{halfClose: true, linger: true}
	}
	return endStep{linger: true}
}

// msgState is what the framing rules need to know of the data message in
// progress: its opcode (0 if none), whether it is compressed, and how many
// wire payload bytes it has had.
type msgState struct {
	op   wire.Opcode
	rsv1 bool
	raw  int64
}

// checkFrame applies the framing rules of RFC 6455 §5 (and RFC 7692's for
// RSV1) to the header of the next frame, for an endpoint in the given role
// with or without permessage-deflate, and returns the close code and error
// for a frame that breaks one. limit is the read limit, 0 or less for none.
func checkFrame(h *wire.Header, client, deflate bool, m msgState, limit int64) (StatusCode, error) {
	allowed := byte(0)
	if deflate {
		allowed = wire.RSV1
	}
	switch {
	case h.RSV&^allowed != 0:
		// §5.2: RSV bits MUST be 0 unless an extension defines them.
		return protocolViolation("reserved bits set without a negotiated extension")
	case h.Opcode.IsReserved():
		return protocolViolation(fmt.Sprintf("reserved opcode %#x", byte(h.Opcode)))
	case h.Masked == client:
		// §5.1: a server MUST close on an unmasked frame, a client on a masked one.
		if client {
			return protocolViolation("masked frame from server")
		}
		return protocolViolation("unmasked frame from client")
	}
	if h.Opcode.IsControl() {
		// §5.5: control frames carry at most 125 bytes and are never fragmented.
		switch {
		case !h.Fin:
			return protocolViolation("fragmented control frame")
		case h.Length > wire.MaxControlPayload:
			return protocolViolation("control frame longer than 125 bytes")
		case h.RSV != 0:
			// RFC 7692 §6: RSV1 is for the first frame of a data message.
			return protocolViolation("RSV1 on a control frame")
		}
		return 0, nil
	}
	if h.Opcode == wire.OpContinuation {
		if m.op == 0 {
			return protocolViolation("continuation frame without a message to continue")
		}
		if h.RSV != 0 {
			return protocolViolation("RSV1 on a continuation frame")
		}
	} else if m.op != 0 {
		// §5.4: fragments of one message are not interleaved with another.
		return protocolViolation("new data frame inside a fragmented message")
	}
	if !deflate || !(m.rsv1 || h.RSV&wire.RSV1 != 0) {
		// Uncompressed: the wire length is the message length, so the
		// limit is checked before a byte of payload is read.
		if limit > 0 && h.Length > limit-m.raw {
			return StatusMessageTooBig, ErrReadLimit
		}
	}
	return 0, nil
}

func protocolViolation(msg string) (StatusCode, error) {
	return StatusProtocolError, fmt.Errorf("%w: %s", ErrProtocol, msg)
}

// parseClose parses the payload of a close frame (§5.5.1, §7.4); for a
// bad one it returns the code to fail with and why.
func parseClose(p []byte) (code uint16, reason string, failCode StatusCode, err error) {
	code, reason, err = wire.ParseClose(p)
	switch {
	case errors.Is(err, wire.ErrCloseReason):
		return 0, "", StatusInvalidFramePayloadData, fmt.Errorf("%w: close reason", ErrInvalidUTF8)
	case err != nil:
		return 0, "", StatusProtocolError, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return code, reason, 0, nil
}
