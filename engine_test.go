package duplex

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// The engine is fed bytes and says what they mean, without I/O, so its
// tests are tables of wire bytes in and events out. Each stream is also
// fed one byte at a time, which must give the same events (payload split
// into more chunks, joined here).
func TestEngineEvents(t *testing.T) {
	for _, tt := range []struct {
		name   string
		client bool
		limit  int64
		wire   []byte
		want   string
	}{
		{name: "masked Hello (RFC 6455 §5.7)", wire: frames("81 85 37fa213d 7f9f4d5158"),
			want: `frame text first | data "Hello" end`},
		{name: "unmasked Hello, as a client reads it", client: true, wire: frames("81 05 48656c6c6f"),
			want: `frame text first | data "Hello" end`},
		{name: "fragmented, a ping between the fragments", client: true, wire: frames("01 03 48656c", "89 05 48656c6c6f", "80 02 6c6f"),
			want: `frame text first | data "Hel" | ping "Hello" | frame text | data "lo" end`},
		{name: "empty binary message", wire: frames("82 80 00000000"),
			want: `frame binary first | data "" end`},
		{name: "pong, then close 1000 with a reason", client: true, wire: frames("8a 00", "88 04 03e8 6f6b"),
			want: `pong "" | close 1000 "ok"`},
		{name: "close without a code", wire: frames("88 80 00000000"),
			want: `close 1005 ""`},
		{name: "unmasked frame from a client (§5.1)", wire: frames("81 05 48656c6c6f"),
			want: `fail 1002`},
		{name: "masked frame from a server (§5.1)", client: true, wire: frames("81 85 37fa213d 7f9f4d5158"),
			want: `fail 1002`},
		{name: "reserved opcode", wire: frames("83 80 00000000"), want: `fail 1002`},
		{name: "RSV1 without an extension", wire: frames("c1 80 00000000"), want: `fail 1002`},
		{name: "fragmented ping", wire: frames("09 80 00000000"), want: `fail 1002`},
		{name: "continuation without a message", wire: frames("80 80 00000000"), want: `fail 1002`},
		{name: "over the read limit, refused at the header", limit: 4, wire: frames("82 85 00000000 0102030405"),
			want: `fail 1009`},
		{name: "over the read limit across fragments", limit: 4, wire: frames("02 83 00000000 010203", "80 82 00000000 0405"),
			want: `frame binary first | data "\x01\x02\x03" | fail 1009`},
		{name: "invalid UTF-8 fails at the byte", wire: frames("81 83 00000000 61ff62"),
			want: `frame text first | fail 1007`},
		{name: "text ending inside a code point", wire: frames("81 82 00000000 e282"),
			want: `frame text first | fail 1007`},
		{name: "close reason not UTF-8", wire: frames("88 83 00000000 03e8ff"), want: `fail 1007`},
		{name: "close code never sent", wire: frames("88 82 00000000 03ed"), want: `fail 1002`},
		{name: "nothing after a failure", wire: frames("83 80 00000000", "81 81 00000000 61"), want: `fail 1002`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, piece := range []int{0, 1} {
				got := engineEvents(tt.wire, tt.client, tt.limit, piece)
				if got != tt.want {
					t.Errorf("fed in pieces of %d (0: whole):\ngot  %s\nwant %s", piece, got, tt.want)
				}
			}
		})
	}
}

// engineEvents feeds wire to a parser piece bytes at a time (all at once
// for 0) and renders the events, joining the payload chunks of a frame.
func engineEvents(wire []byte, client bool, limit int64, piece int) string {
	var lim atomic.Int64
	lim.Store(limit)
	p := parser{client: client, limit: &lim}
	rest := append([]byte(nil), wire...) // the parser unmasks in place
	var buf []byte
	var out []string
	var data []byte
	inData := false
	flush := func(end bool) {
		s := fmt.Sprintf("data %q", data)
		if end {
			s += " end"
		}
		out = append(out, s)
		data, inData = nil, false
	}
	for !p.done {
		var ev event
		buf = buf[p.next(buf, &ev):]
		if ev.kind == evFail {
			// The part of a frame before a failure is void.
			data, inData = nil, false
		}
		if ev.kind != evData && ev.kind != evMore && inData {
			flush(false)
		}
		switch ev.kind {
		case evMore:
			if len(rest) == 0 {
				if inData {
					flush(false)
				}
				return strings.Join(out, " | ")
			}
			k := len(rest)
			if piece > 0 {
				k = min(piece, k)
			}
			buf = append(buf, rest[:k]...)
			rest = rest[k:]
		case evFrame:
			s := "frame " + MessageType(ev.op).String()
			if ev.first {
				s += " first"
			}
			out = append(out, s)
		case evData:
			data, inData = append(data, ev.p...), true
			if ev.end || p.left == 0 {
				flush(ev.end)
			}
		case evPing:
			out = append(out, fmt.Sprintf("ping %q", ev.p))
		case evPong:
			out = append(out, fmt.Sprintf("pong %q", ev.p))
		case evClose:
			out = append(out, fmt.Sprintf("close %d %q", ev.code, ev.reason))
		case evFail:
			out = append(out, fmt.Sprintf("fail %d", ev.code))
		}
	}
	return strings.Join(out, " | ")
}

// readThroughEngine is the smallest driver of the engine: it feeds the
// stream to a parser in pieces of chunk bytes (all at once for 0) and
// gathers whole messages, with no transport at all. FuzzReadFrames holds
// it to the reference reader, as it holds Conn and EventConn.
func readThroughEngine(stream []byte, client bool, chunk int, limit int64) ([]refMessage, refEnd) {
	var lim atomic.Int64
	lim.Store(limit)
	p := parser{client: client, limit: &lim}
	rest := append([]byte(nil), stream...)
	var buf, msg []byte
	var msgs []refMessage
	for {
		var ev event
		buf = buf[p.next(buf, &ev):]
		switch ev.kind {
		case evMore:
			if len(rest) == 0 {
				return msgs, refEnd{StatusAbnormalClosure, false}
			}
			k := len(rest)
			if chunk > 0 {
				k = min(chunk, k)
			}
			buf = append(buf, rest[:k]...)
			rest = rest[k:]
		case evFrame:
			if ev.first {
				msg = msg[:0]
			}
		case evData:
			msg = append(msg, ev.p...)
			if ev.end {
				msgs = append(msgs, refMessage{MessageType(ev.op), string(msg)})
			}
		case evClose:
			return msgs, refEnd{ev.code, false}
		case evFail:
			return msgs, refEnd{ev.code, true}
		}
	}
}
