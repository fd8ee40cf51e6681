package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// Centrifugo's client protocol (v6, JSON over WebSocket; the endpoint is
// /connection/websocket) is pub/sub mode's second protocol, so that
// duplex serve and Centrifugo are measured by the same client the same
// way (issue 13). Each subscriber sends a connect command, waits for its
// reply, subscribes to its channel and waits for that reply; publications
// arrive as pushes. Centrifugo may put several replies in one frame, one
// JSON object a line. It pings with an empty object, which the client
// answers with one: Centrifugo closes clients that do not.
//
//	→ {"id":1,"connect":{"name":"duplex-bench"}}
//	← {"id":1,"connect":{"client":"…","version":"6.9.1","ping":25,"pong":true}}
//	→ {"id":2,"subscribe":{"channel":"bench/0"}}
//	← {"id":2,"subscribe":{"recoverable":true,"epoch":"…","offset":0}}
//	← {"push":{"channel":"bench/0","pub":{"data":{"t":…,"p":"…"},"offset":1}}}
//	← {}                                  (ping)  → {}  (pong)
//
// Publishes go through the server HTTP API: POST /api/publish with the
// key in X-API-Key and the same body as duplex serve's, answered with
// {"result":{…}} or {"error":{…}}, both with status 200.

// Protocols pub/sub mode speaks (Config.Protocol).
const (
	ProtocolDuplex     = "duplex"
	ProtocolCentrifugo = "centrifugo"
)

// centrifugoPing is the ping of Centrifugo's JSON protocol, and its pong.
var centrifugoPing = []byte("{}")

// subscribeCentrifugo connects and subscribes s with Centrifugo's protocol.
func (s *subscriber) subscribeCentrifugo(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		s.nc.SetDeadline(dl)
		defer s.nc.SetDeadline(noDeadline)
	}
	ch := channelName(s.channel)
	steps := []struct{ cmd, reply string }{
		{`{"id":1,"connect":{"name":"duplex-bench"}}`, `"connect":`},
		{`{"id":2,"subscribe":{"channel":"` + ch + `"}}`, `"subscribe":`},
	}
	for i, st := range steps {
		if _, err := s.nc.Write(buildFrame(wire.OpText, 0, s.key, []byte(st.cmd))); err != nil {
			return fmt.Errorf("loadgen: centrifugo: write %s: %w", strings.Trim(st.reply, `":`), err)
		}
		id := []byte(fmt.Sprintf(`{"id":%d,`, i+1))
		if err := s.awaitCentrifugo(id, []byte(st.reply)); err != nil {
			return fmt.Errorf("loadgen: centrifugo: %s %s: %w", strings.Trim(st.reply, `":`), ch, err)
		}
	}
	return nil
}

// awaitCentrifugo reads until the reply that starts with id, answering
// pings on the way, and checks that it carries want rather than an error.
func (s *subscriber) awaitCentrifugo(id, want []byte) error {
	for {
		h, p, err := s.nextData()
		if err != nil {
			return fmt.Errorf("the reply: %w", err)
		}
		if h.Opcode != wire.OpText {
			return fmt.Errorf("unexpected opcode %d", h.Opcode)
		}
		for line := range bytes.Lines(p) {
			line = bytes.TrimSpace(line)
			switch {
			case bytes.Equal(line, centrifugoPing):
				if err := s.centrifugoPong(); err != nil {
					return err
				}
			case bytes.HasPrefix(line, []byte(`{"push":`)):
				// A push that came first: nothing to wait for yet.
			case !bytes.HasPrefix(line, id):
				return fmt.Errorf("got %s, not the reply: is this Centrifugo's /connection/websocket?", quoteStart(line))
			case bytes.Contains(line, []byte(`"error":`)):
				return fmt.Errorf("server answered %s", quoteStart(line))
			case bytes.Contains(line, want):
				return nil
			default:
				return fmt.Errorf("got %s, not the reply: is this Centrifugo's /connection/websocket?", quoteStart(line))
			}
		}
	}
}

func (s *subscriber) centrifugoPong() error {
	s.out = appendFrame(s.out[:0], wire.OpText, 0, s.key, centrifugoPing)
	if _, err := s.nc.Write(s.out); err != nil {
		return fmt.Errorf("loadgen: centrifugo: write pong: %w", err)
	}
	return nil
}

// readCentrifugo records every publication pushed to s until the
// connection ends.
func (s *subscriber) readCentrifugo(ps *pubsubRun, shard int) {
	var local Histogram // flushed to the shard every few deliveries
	var n int
	flush := func() {
		if n == 0 {
			return
		}
		sh := &ps.shards[shard]
		sh.mu.Lock()
		sh.h.Merge(&local)
		sh.mu.Unlock()
		local = Histogram{}
		n = 0
	}
	defer flush()
	fail := func(err error) {
		if !ps.stopping.Load() {
			ps.fail(fmt.Errorf("loadgen: centrifugo subscriber on %s: %w", channelName(s.channel), err))
		}
	}
	for {
		h, p, err := s.nextData()
		if err != nil {
			fail(err)
			return
		}
		switch h.Opcode {
		case wire.OpText:
			if !h.Fin {
				fail(fmt.Errorf("fragmented message %s", quoteStart(p)))
				continue
			}
		default:
			fail(fmt.Errorf("unexpected opcode %d", h.Opcode))
			continue
		}
		for line := range bytes.Lines(p) {
			line = bytes.TrimSpace(line)
			if bytes.Equal(line, centrifugoPing) {
				if err := s.centrifugoPong(); err != nil {
					fail(err)
					return
				}
				continue
			}
			t, ok := centrifugoSentAt(line)
			if !ok {
				if bytes.Contains(line, []byte(`"error":`)) || bytes.Contains(line, []byte(`"disconnect":`)) {
					fail(fmt.Errorf("got %s", quoteStart(line)))
				}
				continue // another push: join, leave, a reply
			}
			local.Record(time.Since(ps.base) - t)
			ps.delivered.Add(1)
			if n++; n == 16 {
				flush()
			}
		}
	}
}

// centrifugoSentAt finds the send time in a publication push:
// {"push":{"channel":…,"pub":{"data":{"t":123,"p":"…"},"offset":…}}}.
func centrifugoSentAt(p []byte) (time.Duration, bool) {
	if !bytes.HasPrefix(p, []byte(`{"push":`)) || !bytes.Contains(p, []byte(`"pub":{`)) {
		return 0, false
	}
	i := bytes.Index(p, []byte(`{"t":`))
	if i < 0 {
		return 0, false
	}
	p = p[i+5:]
	var v int64
	n := 0
	for ; n < len(p) && p[n] >= '0' && p[n] <= '9'; n++ {
		v = v*10 + int64(p[n]-'0')
	}
	return time.Duration(v), n > 0
}

// centrifugoPublisher publishes through Centrifugo's HTTP API. It shares
// the duplex API publisher's client and body; the key goes in X-API-Key
// and errors come back in the body with status 200.
type centrifugoPublisher struct{ *apiPublisher }

func (c centrifugoPublisher) publish(ctx context.Context, _ int, channel string, data []byte) error {
	body := make([]byte, 0, len(data)+48)
	body = append(body, `{"channel":"`...)
	body = append(body, channel...)
	body = append(body, `","data":`...)
	body = append(body, data...)
	body = append(body, '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = c.host
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: centrifugo: POST /api/publish: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{"result":`)) {
		return fmt.Errorf("loadgen: centrifugo: POST /api/publish: %s: %s", resp.Status, quoteStart(bytes.TrimSpace(b)))
	}
	return nil
}

// pubsubName names a pub/sub run in its description: the protocol, when
// it is not duplex's.
func (r *Result) pubsubName() string {
	if r.Protocol != "" && r.Protocol != ProtocolDuplex {
		return "pubsub (" + r.Protocol + ")"
	}
	return "pubsub"
}
