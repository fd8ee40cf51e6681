// Package wsjson reads and writes JSON messages on a duplex connection:
// one JSON value per WebSocket message. It is gorilla/websocket's ReadJSON
// and WriteJSON for duplex, kept out of the duplex package so that its API
// stays small.
//
//	var req struct{ Op string }
//	if err := wsjson.Read(ctx, c, &req); err != nil { ... }
//	err := wsjson.Write(ctx, c, map[string]string{"ok": req.Op})
//
// Read and Write follow the connection's rules: any number of goroutines
// may Write at once, one goroutine Reads, and a context ends the call as
// duplex.Conn documents.
package wsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/duplexws/duplex"
)

// Read reads the next message of c and decodes it as one JSON value into
// v, as json.Unmarshal does. Text and binary messages are both accepted,
// as gorilla/websocket's ReadJSON accepts them; the connection's read
// limit bounds the message.
//
// An error of the connection (a *duplex.CloseError, or the context's
// error) is returned as it is. A message that is not valid JSON, or does
// not fit v, gives an error wrapping json's, and the connection stays
// usable: the message has been read whole, so the next Read gets the next
// one.
func Read(ctx context.Context, c *duplex.Conn, v any) error {
	bp := readBufs.Get().(*[]byte)
	_, p, err := c.ReadInto(ctx, (*bp)[:0])
	if err != nil {
		readBufs.Put(bp)
		return err
	}
	err = json.Unmarshal(p, v)
	// json.Unmarshal copies what it keeps (strings, RawMessage, []byte),
	// and an Unmarshaler must copy too, so the buffer can be reused.
	if cap(p) <= maxPooled {
		*bp = p[:0]
	}
	readBufs.Put(bp)
	if err != nil {
		return fmt.Errorf("wsjson: read: %w", err)
	}
	return nil
}

// Write encodes v as JSON, as json.Marshal does, and sends it as one text
// message. When v cannot be encoded, Write returns the error wrapped and
// sends nothing. A large enough message is compressed when the connection
// negotiated permessage-deflate, as with duplex.Conn.Write.
func Write(ctx context.Context, c *duplex.Conn, v any) error {
	b := writeBufs.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= maxPooled {
			b.Reset()
			writeBufs.Put(b)
		}
	}()
	b.Reset()
	if err := json.NewEncoder(b).Encode(v); err != nil {
		return fmt.Errorf("wsjson: write: %w", err)
	}
	// Encode ends the value with a newline, which Marshal does not: the
	// message is the value alone.
	p := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return c.Write(ctx, duplex.MessageText, p)
}

// maxPooled bounds the buffers kept for reuse, so that one large message
// does not pin its memory for the life of the process.
const maxPooled = 64 << 10

var (
	readBufs  = sync.Pool{New: func() any { return new([]byte) }}
	writeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)
