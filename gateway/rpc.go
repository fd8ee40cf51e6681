package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/duplexws/duplex"
)

// rpcRequest is {"type":"rpc","id":N,"method":M,"data":D}.
type rpcRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Data   json.RawMessage `json:"data"`
}

// rpcReply is {"type":"rpc","id":N,"data":D} or
// {"type":"rpc","id":N,"error":E}.
type rpcReply struct {
	Type  string          `json:"type"`
	ID    json.RawMessage `json:"id"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error json.RawMessage `json:"error,omitempty"`
}

// maxRPCMethod bounds the length of an RPC's method name.
const maxRPCMethod = 128

var errRPCRate = errors.New("rpc rate exceeded")

// onRPC forwards an rpc to --rpc-hook and sends its answer back with the
// same id. The hook's 200 answer is {"data":D} or {"error":E}; a 401 or
// 403 is the error "forbidden", a failure "hook timeout" or "hook
// unavailable", and with no hook the error is "rpc not available". An
// rpc runs where the session's messages are handled (the reader of a
// goroutine session, a loop worker of an event session, which the loop
// replaces within 10 ms while it waits): a client's calls are answered
// one at a time, in order.
func (g *Gateway) onRPC(s *session, p []byte) {
	var req rpcRequest
	if err := json.Unmarshal(p, &req); err != nil {
		g.replyError(s, "", errors.New("bad request: "+jsonProblem(err)))
		return
	}
	// The id is echoed as it came: it must be a number, so that it
	// cannot be used to inject anything into the reply.
	var id json.Number
	if len(req.ID) == 0 || json.Unmarshal(req.ID, &id) != nil || bytes.ContainsAny(req.ID, `"`) {
		g.replyError(s, "", errors.New("bad request: rpc id: want a number"))
		return
	}
	reply := rpcReply{Type: "rpc", ID: req.ID}
	switch {
	case req.Method == "" || len(req.Method) > maxRPCMethod:
		reply.Error = jsonString("bad request: method: want 1 to 128 characters")
	case g.opts.RPCHook == "":
		reply.Error = jsonString(errRPCUnavailable.Error())
	case !g.channels.limiter.allow(s, len(req.Data), time.Now()):
		// Each rpc costs the backend a request: it counts as a publish
		// for --publish-rate and --publish-bytes-rate.
		g.channels.m.limited.WithLabelValues("publish_rate").Inc()
		reply.Error = jsonString(errRPCRate.Error())
	default:
		var out struct {
			Data  json.RawMessage `json:"data"`
			Error json.RawMessage `json:"error"`
		}
		_, err := g.hooks.call(s.context(), "rpc", hookRequest{
			Client: g.clientID(s), User: s.user(), Method: req.Method, Data: req.Data,
		}, &out)
		switch {
		case errors.Is(err, errHookDenied):
			reply.Error = jsonString(errForbidden.Error())
		case err != nil:
			reply.Error = jsonString(err.Error())
		case len(out.Error) > 0 && string(out.Error) != "null":
			reply.Error = out.Error
		case len(out.Data) > 0:
			reply.Data = out.Data
		default:
			reply.Data = json.RawMessage("null")
		}
	}
	b, _ := json.Marshal(reply)
	s.send(duplex.MessageText, b)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
