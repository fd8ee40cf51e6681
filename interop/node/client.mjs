// Node ws client for duplex's interop tests. It runs the scripted exchange
// of ../README.md against the duplex echo server at the URL given first,
// and exits 0 when every echo and close matched, 1 with the reason on
// stderr otherwise.
//
//   node client.mjs ws://127.0.0.1:PORT [--no-close-codes] [--big-size=N] [--deflate ...]
//
// --big-size sets the large message's size (default 16 MiB). Deflate
// flags: see deflateOptions in common.mjs.
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { closeCodes, closeReason, deflateOptions, pattern, runMs, waitMs } from './common.mjs';

const [base, ...args] = process.argv.slice(2);
const closeCodesWanted = !args.includes('--no-close-codes');
const bigSize = Number(args.find((a) => a.startsWith('--big-size='))?.split('=')[1] ?? 16 << 20);
const options = {
  perMessageDeflate: deflateOptions(args.filter((a) => a !== '--no-close-codes' && !a.startsWith('--big-size='))),
  maxPayload: 64 << 20,
};

// Peer is a connection with a queue of received messages.
class Peer {
  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.once('open', () => resolve(new Peer(ws)));
      ws.once('error', reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = { data, isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.queue.push(m);
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed with ${code} ${reason}`));
        resolve({ code, reason: reason.toString() });
      }),
    );
    ws.on('error', (err) => console.error(`ws error: ${err.message}`));
  }

  // recv waits for the next message, longer if n bytes are on their way.
  recv(n = 0) {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    const ms = waitMs(n);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
      this.waiters.push({
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  send(data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts ?? {}, (err) => (err ? reject(err) : resolve())));
  }

  // echo sends one message (a string is text) and checks the echo.
  async echo(name, data, fragment) {
    const binary = typeof data !== 'string';
    const bytes = Buffer.from(data);
    if (fragment) {
      for (let i = 0; i < bytes.length; i += fragment) {
        await this.send(bytes.subarray(i, i + fragment), { binary, fin: i + fragment >= bytes.length });
      }
    } else {
      await this.send(data);
    }
    const m = await this.recv(2 * bytes.length);
    if (m.isBinary !== binary || !Buffer.from(m.data).equals(bytes)) {
      throw new Error(`echo of ${name} (${bytes.length} bytes, binary ${binary}) came back as ${m.data.length} bytes, binary ${m.isBinary}`);
    }
  }

  async expectText(want, what) {
    const m = await this.recv();
    if (m.isBinary || m.data.toString() !== want) {
      throw new Error(`${what}: got ${JSON.stringify(m.data.toString().slice(0, 200))}; want ${JSON.stringify(want)}`);
    }
  }
}

function prose(n) {
  const words = 'the quick brown fox jumps over a lazy dog while duplex echoes frames ✓ über naïve café'.split(' ');
  const out = [];
  for (let i = 0, size = 0; size < n; i++) {
    const w = words[(i * 7) % words.length] + ' ';
    out.push(w);
    size += Buffer.byteLength(w);
  }
  return out.join('');
}

async function main() {
  const c = await Peer.open(`${base}/c/main`);
  console.log(`EXTENSIONS ${c.ws.extensions}`);
  const messages = [
    ['text', 'hello, peer'],
    ['utf-8 text', 'héllo wörld ✓ 🚀 日本語'],
    ['binary', Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff])],
    ['empty text', ''],
    ['empty binary', Buffer.alloc(0)],
    ['125 bytes', pattern(125)],
    ['126 bytes', pattern(126)],
    ['65535 bytes', pattern(65535)],
    ['65536 bytes', pattern(65536)],
    ['200 KiB text', prose(200 << 10)],
    ['large binary', randomBytes(bigSize)],
  ];
  for (const [name, data] of messages) await c.echo(name, data);

  // Fragments cut through multi-byte characters: duplex must validate
  // UTF-8 across frames.
  await c.echo('fragmented text', prose(300000), 1000);
  await c.send('cmd:fragmented 300000');
  const f = await c.recv(300000);
  if (!f.isBinary || !Buffer.from(f.data).equals(pattern(300000))) throw new Error('cmd:fragmented: wrong payload');

  // ws pings duplex; duplex answers with the same payload.
  const payload = Buffer.from('ws ping');
  const pong = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no pong from duplex within ${waitMs()} ms`)), waitMs());
    c.ws.once('pong', (p) => (clearTimeout(timer), p.equals(payload) ? resolve() : reject(new Error(`pong payload ${p}`))));
  });
  c.ws.ping(payload);
  await pong;
  // duplex pings ws; ws answers by itself and duplex reports.
  await c.send('cmd:ping');
  await c.expectText('pong', 'cmd:ping');

  // A burst of similar messages, pipelined: context takeover at work.
  const burst = [];
  for (let i = 0; i < 300; i++) {
    const s = JSON.stringify({ seq: i, user: `user-${i % 20}`, channel: 'general', text: prose(50 + ((i * 37) % 1500)) });
    burst.push(i % 7 === 3 ? Buffer.from(s) : s);
  }
  await Promise.all(burst.map((m) => c.send(m)));
  const burstBytes = burst.reduce((n, m) => n + Buffer.byteLength(m), 0);
  for (const [i, m] of burst.entries()) {
    const got = await c.recv(i === 0 ? 2 * burstBytes : 0);
    if (got.isBinary !== (typeof m !== 'string') || !Buffer.from(got.data).equals(Buffer.from(m))) {
      throw new Error(`burst message ${i} came back different`);
    }
  }

  c.ws.close(1000, 'done');
  const mainClose = await c.closed;
  if (mainClose.code !== 1000) throw new Error(`closing main: duplex answered ${mainClose.code}; want 1000`);

  if (!closeCodesWanted) return;
  for (const code of closeCodes) {
    const reason = closeReason(code);
    // ws closes; duplex answers with the same code.
    const a = await Peer.open(`${base}/c/client-close-${code}`);
    a.ws.close(code, reason);
    const ac = await a.closed;
    if (ac.code !== code) throw new Error(`ws closed with ${code}; duplex answered ${ac.code}`);
    // duplex closes; ws reports its code and reason.
    const b = await Peer.open(`${base}/c/server-close-${code}`);
    await b.send(`cmd:close ${code} ${reason}`);
    const bc = await b.closed;
    if (bc.code !== code || bc.reason !== reason) {
      throw new Error(`duplex closed with ${code} ${JSON.stringify(reason)}; ws saw ${bc.code} ${JSON.stringify(bc.reason)}`);
    }
  }
  // What duplex saw of ws's closes.
  const ctl = await Peer.open(`${base}/c/control`);
  for (const code of closeCodes) {
    await ctl.send(`cmd:closed client-close-${code}`);
    await ctl.expectText(`${code} ${closeReason(code)}`, `cmd:closed client-close-${code}`);
  }
  ctl.ws.close(1000);
  await ctl.closed;
}

setTimeout(() => {
  console.error(`client.mjs: timed out after ${runMs} ms (DUPLEX_TEST_RUN_MS)`);
  process.exit(2);
}, runMs).unref();

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`client.mjs: ${err.stack ?? err}`);
    process.exit(1);
  },
);
