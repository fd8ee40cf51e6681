package browser

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// socketRecord is what the echo server saw of one WebSocket request.
type socketRecord struct {
	proto      int    // r.ProtoMajor
	method     string // r.Method
	remote     string // r.RemoteAddr
	offer      string // Sec-WebSocket-Extensions of the request
	extensions string // c.Extensions(): what was agreed
	closeCode  duplex.StatusCode
	closeErr   error // what ended the echo loop
	wireIn     int64 // bytes read from the TCP connection, if counted
	wireOut    int64 // bytes written to it
}

// echoServer is a duplex echo handler that records every WebSocket
// request it serves.
type echoServer struct {
	opts *duplex.AcceptOptions

	mu      sync.Mutex
	records []socketRecord // guarded by mu; one per ended socket
	refused []error        // guarded by mu; failed handshakes
	active  sync.WaitGroup // sockets still being served
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.active.Add(1)
	defer e.active.Done()
	c, err := duplex.Accept(w, r, e.opts)
	if err != nil {
		e.mu.Lock()
		e.refused = append(e.refused, err)
		e.mu.Unlock()
		return
	}
	rec := socketRecord{
		proto:      r.ProtoMajor,
		method:     r.Method,
		remote:     r.RemoteAddr,
		offer:      r.Header.Get("Sec-WebSocket-Extensions"),
		extensions: c.Extensions(),
	}
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err == nil {
			err = c.Write(ctx, typ, p)
		}
		if err != nil {
			rec.closeErr = err
			rec.closeCode = duplex.CloseStatus(err)
			break
		}
	}
	c.CloseNow()
	if cc, ok := connOf(r).(*countingConn); ok {
		rec.wireIn, rec.wireOut = cc.in.Load(), cc.out.Load()
	}
	e.mu.Lock()
	e.records = append(e.records, rec)
	e.mu.Unlock()
}

// wait waits until every socket has been served, and returns the records.
func (e *echoServer) wait(t *testing.T) []socketRecord {
	t.Helper()
	done := make(chan struct{})
	go func() {
		e.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("echo handlers still running %v after the page finished", testkit.Timeout(0))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.refused {
		t.Errorf("handshake refused: %v", err)
	}
	return append([]socketRecord(nil), e.records...)
}

// pageResult is what a test page reports in its #result element.
type pageResult struct {
	OK         bool     `json:"ok"`
	Errors     []string `json:"errors"`
	Sockets    int      `json:"sockets"`
	Messages   int      `json:"messages"`   // echoes checked
	Bytes      int64    `json:"bytes"`      // payload bytes sent, all sockets
	Extensions []string `json:"extensions"` // ws.extensions of each socket
}

// result waits for the page to finish and decodes its report.
func (tb *tab) result() pageResult {
	tb.t.Helper()
	return tb.resultOf(0)
}

// resultOf is result for a page that echoes n bytes in all (both ways):
// it waits longer for them.
func (tb *tab) resultOf(n int) pageResult {
	tb.t.Helper()
	tb.waitFor("the page's result", `document.getElementById('result').dataset.done === 'true'`, stepTimeout+testkit.ForBytes(n))
	raw := eval[string](tb, `document.getElementById('result').textContent`)
	var res pageResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		tb.fail("page result %q: %v", raw, err)
	}
	return res
}

// checkClosedNormally fails unless the socket ended with the page's
// close(1000).
func checkClosedNormally(t *testing.T, rec socketRecord) {
	t.Helper()
	var ce *duplex.CloseError
	if !errors.As(rec.closeErr, &ce) || ce.Code != duplex.StatusNormalClosure || ce.Reason != "done" {
		t.Errorf("socket from %s ended with %v; want the page's close 1000 \"done\"", rec.remote, rec.closeErr)
	}
}

// echoPage is a page that opens sockets to the echo server and checks
// every echo. Query: n (sockets, default 1), texts (compressible text
// messages per socket), binary (bytes of one binary message, 0 for none),
// and path (default /echo). It writes a pageResult as JSON in #result and
// sets data-done.
const echoPage = `<!doctype html>
<meta charset="utf-8">
<title>duplex echo check</title>
<link rel="icon" href="data:,">
<pre id="result"></pre>
<script type="module">
const q = new URLSearchParams(location.search);
const sockets = Number(q.get('n') ?? 1);
const texts = Number(q.get('texts') ?? 200);
const binarySize = Number(q.get('binary') ?? 0);
const path = q.get('path') ?? '/echo';
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';

// Compressible, all different, and longer than the compression threshold.
const text = (s, i) => JSON.stringify({ socket: s, seq: i, kind: 'compressible ✓',
  body: 'the quick brown fox jumps over the lazy dog; '.repeat(8 + i % 17) });

// Half noise, half pattern: stored and compressed deflate blocks both.
function binary(s) {
  const b = new Uint8Array(binarySize);
  let x = 0x9e3779b9 ^ s;
  for (let i = 0; i < b.length; i++) {
    if (i < b.length / 2) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
    else b[i] = (i % 251) ^ ((i >> 12) & 0xff);
  }
  return b;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// run opens socket s, sends everything at once, and checks the echoes in order.
function run(s, report) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(scheme + '//' + location.host + path);
    ws.binaryType = 'arraybuffer';
    const want = [];
    for (let i = 0; i < texts; i++) want.push(text(s, i));
    if (binarySize > 0) want.push(binary(s));
    let got = 0;
    ws.onopen = () => {
      report.extensions[s] = ws.extensions;
      for (const m of want) { ws.send(m); report.bytes += typeof m === 'string' ? new TextEncoder().encode(m).length : m.length; }
    };
    ws.onmessage = (ev) => {
      const w = want[got];
      const ok = typeof w === 'string' ? ev.data === w
        : ev.data instanceof ArrayBuffer && equalBytes(new Uint8Array(ev.data), w);
      if (!ok) { reject(new Error('socket ' + s + ': echo ' + got + ' differs')); ws.close(); return; }
      report.messages++;
      if (++got === want.length) { ws.close(1000, 'done'); }
    };
    ws.onclose = (ev) => got === want.length && ev.code === 1000 ? resolve()
      : reject(new Error('socket ' + s + ' closed with ' + ev.code + ' ' + ev.reason + ' after ' + got + ' echoes'));
  });
}

const report = { ok: false, errors: [], sockets, messages: 0, bytes: 0, extensions: [] };
const results = await Promise.allSettled(Array.from({ length: sockets }, (_, s) => run(s, report)));
for (const r of results) if (r.status === 'rejected') report.errors.push(String(r.reason && r.reason.message || r.reason));
report.ok = report.errors.length === 0;
const out = document.getElementById('result');
out.textContent = JSON.stringify(report);
out.dataset.done = 'true';
</script>
`

// serveEchoPage serves echoPage.
func serveEchoPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(echoPage))
}
