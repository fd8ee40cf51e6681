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
