package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/duplexws/duplex"
)

// ackPrefix starts the acknowledgement of every message on /ws, as the
// seed's server did.
const ackPrefix = "received: "

// appMessage is the envelope of the JSON text messages /ws understands.
// Anything else, JSON or not, is acknowledged.
type appMessage struct {
	Type string          `json:"type"`
	T    json.RawMessage `json:"t,omitempty"`
}

// onAppMessage handles a message on /ws:
//
//   - {"type":"ping","t":T}, the browser client's heartbeat (browsers
//     cannot send ping frames), gets {"type":"pong","t":T} and no ack;
//   - {"type":"subscribe"}, "unsubscribe" and "publish" work on channels
//     (onChannelMessage, docs/protocol.md);
//   - {"type":"refresh","token":T} extends the session's token lifetime
//     (onRefresh);
//   - {"type":"presence"} lists a channel's members (onPresence), and
//     {"type":"rpc"} calls the RPC hook (onRPC);
//   - any other message gets a message of the same type holding
//     "received: " followed by it.
func (g *Gateway) onAppMessage(s *session, typ duplex.MessageType, p []byte) {
	if typ == duplex.MessageText && len(p) > 0 && p[0] == '{' {
		var m appMessage
		if json.Unmarshal(p, &m) == nil {
			switch m.Type {
			case "ping":
				// T was valid JSON inside valid JSON, so it is sent back
				// as it came, whatever the client put there.
				reply, _ := json.Marshal(appMessage{Type: "pong", T: m.T})
				s.send(duplex.MessageText, reply)
				return
			case "subscribe", "unsubscribe", "publish":
				g.onChannelMessage(s, p)
				return
			case "refresh":
				g.onRefresh(s, p) // refresh.go
				return
			case "presence":
				g.onPresence(s, p) // presence_messages.go
				return
			case "rpc":
				g.onRPC(s, p) // rpc.go
				return
			}
		}
	}
	s.send(typ, ack(p))
}

// onAppMessage is g.onAppMessage as a plain function: a method value
// would be a closure allocated for, and kept by, every session.
func onAppMessage(s *session, typ duplex.MessageType, p []byte) {
	s.g.onAppMessage(s, typ, p)
}

func ack(p []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(ackPrefix) + len(p))
	b.WriteString(ackPrefix)
	b.Write(p)
	return b.Bytes()
}

// onEchoMessage sends every message back unchanged, with its type.
func onEchoMessage(s *session, typ duplex.MessageType, p []byte) {
	s.send(typ, p)
}
