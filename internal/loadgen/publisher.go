package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duplexws/duplex/internal/wire"
)

// publisher sends pub/sub mode's publishes; worker w of Config.Publishers
// calls publish, one call at a time per worker.
type publisher interface {
	publish(ctx context.Context, w int, channel string, data []byte) error
	close()
}

func newPublisher(cfg *Config, t target) (publisher, error) {
	switch cfg.PublishVia {
	case "api":
		return newAPIPublisher(cfg, t)
	case "ws":
		return newWSPublisher(cfg, t)
	}
	return nil, fmt.Errorf("loadgen: publish via %q: want api or ws", cfg.PublishVia)
}

// apiPublisher publishes with POST /api/publish (docs/protocol.md, "HTTP
// API"), over keep-alive connections, one per worker.
type apiPublisher struct {
	client *http.Client
	url    string
	host   string
	key    string
}

func newAPIPublisher(cfg *Config, t target) (*apiPublisher, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("loadgen: publishing through the HTTP API needs its key (the server's --api-key)")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: parse URL: %w", err)
	}
	scheme := "http"
	if t.tls {
		scheme = "https"
	}
	tr := &http.Transport{
		MaxIdleConnsPerHost: cfg.Publishers,
		TLSClientConfig:     cfg.TLS.Clone(),
		DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1
	}
	return &apiPublisher{
		client: &http.Client{Transport: tr, Timeout: dialTimeout},
		url:    scheme + "://" + u.Host + "/api/publish",
		host:   t.host,
		key:    cfg.APIKey,
	}, nil
}

func (a *apiPublisher) publish(ctx context.Context, _ int, channel string, data []byte) error {
	body := make([]byte, 0, len(data)+48)
	body = append(body, `{"channel":"`...)
	body = append(body, channel...)
	body = append(body, `","data":`...)
	body = append(body, data...)
	body = append(body, '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = a.host
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: POST /api/publish: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("loadgen: POST /api/publish: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	io.Copy(io.Discard, resp.Body) // let the connection be reused
	return nil
}

func (a *apiPublisher) close() { a.client.CloseIdleConnections() }

// wsPublisher publishes with {"type":"publish"} messages on connections
// of their own to the same endpoint as the subscribers, one per worker.
type wsPublisher struct {
	conns []*pubConn
	wg    sync.WaitGroup
}

// pubConn is one publishing connection; its reader answers pings and
// notes error replies.
type pubConn struct {
	mu   sync.Mutex // guards writes and buf
	nc   net.Conn
	fr   *frameReader
	key  [4]byte
	buf  []byte
	errc chan error // the first error reply or failure, buffered
}

func newWSPublisher(cfg *Config, t target) (*wsPublisher, error) {
	d := newDialer(t, cfg.SourceAddrs, cfg.TLS)
	wp := &wsPublisher{}
	for i := range cfg.Publishers {
		fr := newFrameReader(nil, 4<<10)
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		nc, _, err := d.dial(ctx, fr, false)
		cancel()
		if err != nil {
			wp.close()
			return nil, fmt.Errorf("loadgen: publisher connection: %w", err)
		}
		r := rand.New(rand.NewPCG(uint64(i), 0x9b1))
		pc := &pubConn{nc: nc, fr: fr, key: randomKey(r), errc: make(chan error, 1)}
		wp.conns = append(wp.conns, pc)
		wp.wg.Go(pc.read)
	}
	return wp, nil
}

func (pc *pubConn) write(op wire.Opcode, p []byte) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.buf = appendFrame(pc.buf[:0], op, 0, pc.key, p)
	pc.nc.SetWriteDeadline(time.Now().Add(dialTimeout))
	_, err := pc.nc.Write(pc.buf)
	return err
}

func (pc *pubConn) read() {
	report := func(err error) {
		select {
		case pc.errc <- err:
		default:
		}
	}
	for {
		h, p, err := pc.fr.next()
		if err != nil {
			report(fmt.Errorf("loadgen: publisher connection: %w", err))
			return
		}
		switch h.Opcode {
		case wire.OpPing:
			pc.write(wire.OpPong, p)
		case wire.OpClose:
			code, reason, _ := wire.ParseClose(p)
			report(fmt.Errorf("loadgen: publisher connection: server closed with %d %q", code, reason))
			return
		case wire.OpText:
			if bytes.Contains(p, []byte(`"type":"error"`)) {
				report(fmt.Errorf("loadgen: publish refused: %s", quoteStart(p)))
			}
		}
	}
}

func (wp *wsPublisher) publish(ctx context.Context, w int, channel string, data []byte) error {
	pc := wp.conns[w]
	select {
	case err := <-pc.errc:
		return err
	default:
	}
	msg := make([]byte, 0, len(data)+64)
	msg = append(msg, `{"type":"publish","channel":"`...)
	msg = append(msg, channel...)
	msg = append(msg, `","data":`...)
	msg = append(msg, data...)
	msg = append(msg, '}')
	if err := pc.write(wire.OpText, msg); err != nil {
		return fmt.Errorf("loadgen: write publish: %w", err)
	}
	return nil
}

func (wp *wsPublisher) close() {
	for _, pc := range wp.conns {
		pc.nc.Close()
	}
	wp.wg.Wait()
}
