// Command gobwas is the echo server for gobwas/ws in the peer comparison:
// it echoes every message, with its type, on any path.
//
// Uncompressed, it uses gobwas' low-level, zero-copy style: the upgrade on
// the raw connection, then headers and payloads read into reused buffers and
// echoed frame by frame with one writev. With -compress it uses wsutil and
// wsflate as gobwas' README shows.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"flag"
	"io"
	"log"
	"net"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// maxPayload bounds frames: gobwas leaves that to the user.
const maxPayload = 64 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	compress := flag.Bool("compress", false, "permessage-deflate, no context takeover, level 1")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("gobwas echo server on %s (compress=%v)", *addr, *compress)
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn, *compress)
	}
}

func serve(conn net.Conn, compress bool) {
	defer conn.Close()
	ext := wsflate.Extension{Parameters: wsflate.Parameters{
		ServerNoContextTakeover: true,
		ClientNoContextTakeover: true,
	}}
	var u ws.Upgrader
	if compress {
		u.Negotiate = ext.Negotiate
	}
	if _, err := u.Upgrade(conn); err != nil {
		return
	}
	if _, ok := ext.Accepted(); ok {
		echoDeflate(conn)
		return
	}
	echoRaw(conn)
}

// echoRaw echoes frame by frame, data frames and their continuations alike.
func echoRaw(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 4096)
	var payload []byte
	var hdr bytes.Buffer
	for {
		h, err := ws.ReadHeader(br)
		if err != nil || h.Length > maxPayload {
			return
		}
		if int64(cap(payload)) < h.Length {
			payload = make([]byte, h.Length)
		}
		p := payload[:h.Length]
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			err = ws.WriteFrame(conn, ws.NewPongFrame(p))
		case ws.OpPong:
		case ws.OpClose:
			ws.WriteFrame(conn, ws.NewCloseFrame(p))
			return
		default:
			h.Masked = false
			hdr.Reset()
			ws.WriteHeader(&hdr, h)
			bufs := net.Buffers{hdr.Bytes(), p}
			_, err = bufs.WriteTo(conn)
		}
		if err != nil {
			return
		}
	}
}

// echoDeflate inflates each message and compresses the echo again, as in
// gobwas' README.
func echoDeflate(conn net.Conn) {
	var msg wsflate.MessageState
	state := ws.StateServerSide | ws.StateExtended
	// No CheckUTF8: wsutil would check the compressed bytes.
	rd := &wsutil.Reader{
		Source:         conn,
		State:          state,
		MaxFrameSize:   maxPayload,
		Extensions:     []wsutil.RecvExtension{&msg},
		OnIntermediate: wsutil.ControlFrameHandler(conn, ws.StateServerSide),
	}
	wr := wsutil.NewWriter(conn, state, 0)
	wr.SetExtensions(&msg)
	fr := wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor { return flate.NewReader(r) })
	fw := wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, flate.BestSpeed)
		return f
	})
	control := wsutil.ControlFrameHandler(conn, ws.StateServerSide)
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return
		}
		if h.OpCode.IsControl() {
			if err := control(h, rd); err != nil {
				return
			}
			continue
		}
		wr.ResetOp(h.OpCode) // Reset would drop the extension
		if msg.IsCompressed() {
			fr.Reset(rd)
			fw.Reset(wr)
			if _, err := io.Copy(fw, fr); err != nil {
				return
			}
			if err := fw.Close(); err != nil {
				return
			}
		} else if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Flush(); err != nil {
			return
		}
	}
}
