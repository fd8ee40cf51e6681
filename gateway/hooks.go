package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Backend hooks (issue 16; docs/protocol.md, "Backend hooks"): the
// gateway asks the application's backend, by an HTTP POST of JSON, who a
// client is (--connect-hook), whether it may subscribe (--subscribe-hook)
// or publish (--publish-hook, which may replace the data), and what to
// answer a {"type":"rpc"} (--rpc-hook).
//
// A hook answers 200 with a JSON body (which may be empty where nothing
// is needed), or 401/403 to refuse. Anything else, a network error, or no
// answer within HookTimeout is a failure: the client gets an error (503 at
// connect; "hook unavailable" or "hook timeout" after it), the failure is
// logged (at most LogRefusalRate lines a second) and counted in
// duplex_hook_requests_total{hook,result}.

// Errors of hook calls; the last three are sent to clients as they are.
var (
	errHookDenied      = errors.New("denied by hook")
	errHookTimeout     = errors.New("hook timeout")
	errHookUnavailable = errors.New("hook unavailable")
	errRPCUnavailable  = errors.New("rpc not available")
)

// hookMinReplyBytes is the least a hook's answer may hold; beyond
// MaxMessageSize (or this) it is a failure.
const hookMinReplyBytes = 64 << 10

type hooks struct {
	g        *Gateway
	client   *http.Client
	requests *prometheus.CounterVec // by hook and result
	maxReply int64
}

func newHooks(g *Gateway) *hooks {
	h := &hooks{
		g:      g,
		client: &http.Client{Timeout: g.opts.HookTimeout},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_hook_requests_total",
			Help: "Calls of the backend hooks, by hook and result (ok, denied, timeout, error; canceled: the client or the server went away first).",
		}, []string{"hook", "result"}),
	}
	limit := g.opts.MaxMessageSize
	if limit < 0 {
		limit = DefaultMaxMessageSize
	}
	// Room for the envelope around a replaced publish's data.
	h.maxReply = max(limit+4096, hookMinReplyBytes)
	g.metrics.reg.MustRegister(h.requests)
	for _, name := range []string{"connect", "subscribe", "publish", "rpc"} {
		if h.url(name) != "" {
			for _, r := range []string{"ok", "denied", "timeout", "error"} {
				h.requests.WithLabelValues(name, r)
			}
		}
	}
	return h
}

func (h *hooks) url(name string) string {
	switch name {
	case "connect":
		return h.g.opts.ConnectHook
	case "subscribe":
		return h.g.opts.SubscribeHook
	case "publish":
		return h.g.opts.PublishHook
	case "rpc":
		return h.g.opts.RPCHook
	}
	return ""
}

// call POSTs body to the hook name and decodes a 200 answer into out
// (an empty answer leaves out as it is). It returns nil, errHookDenied
// with the status for a 401 or 403, or errHookTimeout or
// errHookUnavailable.
func (h *hooks) call(ctx context.Context, name string, body, out any) (status int, err error) {
	result := "error"
	defer func() { h.requests.WithLabelValues(name, result).Inc() }()
	b, err := json.Marshal(body)
	if err != nil {
		return 0, h.fail(name, result, err, errHookUnavailable)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, h.g.opts.HookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url(name), bytes.NewReader(b))
	if err != nil {
		return 0, h.fail(name, result, err, errHookUnavailable)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		if parent.Err() != nil {
			// The client went away, or the server is stopping: not
			// the hook's failure.
			result = "canceled"
			return 0, errConnectionEnding
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			result = "timeout"
			return 0, h.fail(name, result, err, errHookTimeout)
		}
		return 0, h.fail(name, result, err, errHookUnavailable)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		result = "denied"
		io.Copy(io.Discard, io.LimitReader(resp.Body, h.maxReply))
		return resp.StatusCode, errHookDenied
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, h.maxReply))
		return resp.StatusCode, h.fail(name, result, fmt.Errorf("status %d", resp.StatusCode), errHookUnavailable)
	}
	reply, err := io.ReadAll(io.LimitReader(resp.Body, h.maxReply+1))
	switch {
	case err != nil && (ctx.Err() != nil || isTimeout(err)):
		result = "timeout"
		return 0, h.fail(name, result, err, errHookTimeout)
	case err != nil:
		return 0, h.fail(name, result, err, errHookUnavailable)
	case int64(len(reply)) > h.maxReply:
		return 0, h.fail(name, result, fmt.Errorf("answer over %d bytes", h.maxReply), errHookUnavailable)
	}
	if len(bytes.TrimSpace(reply)) > 0 && out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			return 0, h.fail(name, result, fmt.Errorf("answer: %s", jsonProblem(err)), errHookUnavailable)
		}
	}
	result = "ok"
	return http.StatusOK, nil
}

// fail logs a failed hook call (rate-limited) and returns the error for
// the client.
func (h *hooks) fail(name, result string, cause, err error) error {
	h.g.logs.warn("hook failed", "hook", name, "result", result, "error", clip(cause.Error()))
	return err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// hookRequest is the body of the subscribe, publish and RPC hooks.
type hookRequest struct {
	Client  string          `json:"client"`
	User    string          `json:"user"`
	Channel string          `json:"channel,omitempty"`
	Method  string          `json:"method,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// allowSubscribe asks the subscribe hook, if there is one, whether s may
// subscribe to channel. A denial is errForbidden.
func (h *hooks) allowSubscribe(s *session, channel string) error {
	if h.g.opts.SubscribeHook == "" {
		return nil
	}
	_, err := h.call(s.context(), "subscribe", hookRequest{Client: h.g.clientID(s), User: s.user(), Channel: channel}, nil)
	if errors.Is(err, errHookDenied) {
		return errForbidden
	}
	return err
}

// checkPublish asks the publish hook, if there is one, whether s may
// publish data to channel, and returns the data to publish: the hook's
// "data" if its answer has one, else data.
func (h *hooks) checkPublish(s *session, channel string, data json.RawMessage) (json.RawMessage, error) {
	if h.g.opts.PublishHook == "" || len(data) == 0 {
		return data, nil
	}
	var reply struct {
		Data json.RawMessage `json:"data"`
	}
	_, err := h.call(s.context(), "publish", hookRequest{Client: h.g.clientID(s), User: s.user(), Channel: channel, Data: data}, &reply)
	switch {
	case errors.Is(err, errHookDenied):
		return nil, errForbidden
	case err != nil:
		return nil, err
	case len(reply.Data) > 0:
		return reply.Data, nil
	}
	return data, nil
}
