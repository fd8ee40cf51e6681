package duplex

import "net/http"

// acceptHTTP2 handles a request that arrived over HTTP/2. WebSockets over
// HTTP/2 (RFC 8441 extended CONNECT) are not served yet, so such a request
// is refused with a clear status rather than half-upgraded.
func acceptHTTP2(w http.ResponseWriter, r *http.Request, o *AcceptOptions) (*Conn, error) {
	return nil, refuse(w, &refusal{http.StatusHTTPVersionNotSupported, "WebSocket over HTTP/2 is not supported by this server"})
}
