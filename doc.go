// Package duplex implements the WebSocket protocol (RFC 6455) for servers
// and clients, with permessage-deflate (RFC 7692).
//
// A server upgrades requests in an ordinary http.Handler:
//
//	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
//		c, err := duplex.Accept(w, r, nil)
//		if err != nil {
//			return // Accept has answered with an HTTP error
//		}
//		defer c.CloseNow()
//		for {
//			typ, p, err := c.Read(r.Context())
//			if err != nil {
//				return
//			}
//			if err := c.Write(r.Context(), typ, p); err != nil {
//				return
//			}
//		}
//	})
//
// A client dials:
//
//	c, _, err := duplex.Dial(ctx, "ws://localhost:8080/echo", nil)
//	...
//	defer c.Close(duplex.StatusNormalClosure, "")
//
// # Concurrency
//
// Writes are safe from any goroutine; one goroutine reads at a time, and
// one must keep reading for pings, pongs and close frames to be handled.
//
// # Two ways to run a connection
//
// A Conn is run by the program's goroutines: Read blocks until a message
// arrives, and Reader streams one of any size without holding it whole.
// This is the simple way, and the right one for clients, for handlers
// that keep per-connection state on the stack, for large or streamed
// messages, and for TLS and HTTP/2, which only a Conn serves.
//
// An EventConn is run by an event loop (epoll, Linux only): Conn.Detach
// hands a Conn over, or ServeEvents accepts connections into the loop
// directly. It costs no goroutine and no buffer while idle, and its
// messages arrive whole in EventHandler.OnMessage, on a worker, valid
// only during the call. Pick it for many mostly-idle connections (tens of
// thousands of chat or notification sockets), where a goroutine and its
// stack per connection are the cost that matters.
//
// Both run on one protocol engine: the same frame checks, limits, close
// codes and close handshake, byte for byte (the conformance tests run
// every case in each). They differ only where blocking and callbacks must:
// Conn.Ping waits for the pong and returns the round trip, while
// EventConn.Ping returns once the ping is sent and the pong reaches
// OnPong. An EventConn also has writes that never wait (TryWrite, TryPing,
// TryWritePreparedBatch): when its socket is full they return
// ErrWouldBlock, so a program with queues of its own can write to many
// connections from a few goroutines and leave the waiting to one. A compressed message is inflated as its bytes arrive in both,
// so bad compressed data (1007) or an inflated size past the read limit
// (1009) ends the connection at the byte that shows it, even if the peer
// never sends the rest of the message.
//
// After the close handshake the server closes the TCP connection first
// and a client waits for it, at most the close timeout (RFC 6455 §7.1.1);
// after a protocol failure a server half-closes and both wait for the
// peer to read the close frame. In every case the program hears of the
// end at once: Read returns, OnClose is called, and the waiting is done
// in the background.
//
// # Safe defaults
//
// With nil options, Accept refuses cross-origin browser requests (see
// AcceptOptions.OriginPatterns), messages are limited to 32 MiB, and the
// close handshake is bounded by 5 seconds. Every frame is checked against
// RFC 6455: a violation closes the connection with the code the RFC names
// (1002, 1007 or 1009), and the error says which rule was broken.
//
// # Memory
//
// An idle connection holds no read or write buffer: buffers come from
// pools while a frame is in flight. A whole-message Read allocates the
// message it returns; Reader and Writer stream and allocate nothing per
// message.
//
// # Errors
//
// When a connection ends, every call returns a *CloseError that says who
// closed it, with what code, and why; CloseStatus extracts the code.
package duplex
