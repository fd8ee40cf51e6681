// RFC 8441 client for duplex's interop tests: WebSockets over one HTTP/2
// connection, with Node's built-in http2 module (no npm package) and a
// WebSocket framing written here, so that nothing of duplex checks duplex.
//
//   node h2-client.mjs https://127.0.0.1:PORT/echo
//
// It checks that the server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL
// (RFC 8441 §3), that a Sec-WebSocket-Version other than 13 is refused
// with 426 (RFC 6455 §4.4), and then opens three extended CONNECT streams
// (§4) on the one session and runs an exchange on each: text, binary, the
// three length encodings of RFC 6455 §5.2, a 100 KiB message, a ping and
// the close handshake. It prints OK and exits 0 when all of it matched,
// or prints the reason on stderr and exits 1.
import http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import { runMs, waitMs } from './common.mjs';

const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };
const opName = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));
// A frame's wait: the largest message (100 KiB) both ways, scaled as the Go
// test says (common.mjs), and never under 30 s.
const timeoutMs = Math.max(30000, waitMs(2 * (100 << 10)));

// encodeFrame returns one client frame: FIN set, masked with a fresh key
// (RFC 6455 §5.3), the payload length in 7, 7+16 or 7+64 bits (§5.2).
function encodeFrame(opcode, payload) {
  const n = payload.length;
  let hdr;
  if (n < 126) {
    hdr = Buffer.alloc(2);
    hdr[1] = 0x80 | n;
  } else if (n < 0x10000) {
    hdr = Buffer.alloc(4);
    hdr[1] = 0x80 | 126;
    hdr.writeUInt16BE(n, 2);
  } else {
    hdr = Buffer.alloc(10);
    hdr[1] = 0x80 | 127;
    hdr.writeBigUInt64BE(BigInt(n), 2);
  }
  hdr[0] = 0x80 | opcode;
  const key = randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([hdr, key, body]);
}

// FrameDecoder parses server frames from the bytes of a stream. A server
// frame is never masked (RFC 6455 §5.1) and, with no extension agreed,
// has no RSV bit set (§5.2); either is an error here.
class FrameDecoder {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }

  // next returns the next whole frame, or null if more bytes are needed.
  next() {
    const b = this.buf;
    if (b.length < 2) return null;
    if (b[1] & 0x80) throw new Error(`server frame is masked: ${b.subarray(0, 2).toString('hex')}`);
    if (b[0] & 0x70) throw new Error(`server frame has RSV bits without an extension: ${b.subarray(0, 2).toString('hex')}`);
    let n = b[1] & 0x7f;
    let off = 2;
    if (n === 126) {
      if (b.length < 4) return null;
      n = b.readUInt16BE(2);
      off = 4;
    } else if (n === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`frame length ${big}`);
      n = Number(big);
      off = 10;
    }
    if (b.length < off + n) return null;
    const frame = { fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload: b.subarray(off, off + n) };
    this.buf = b.subarray(off + n);
    return frame;
  }
}

// WSStream is a WebSocket over one extended CONNECT stream: frames written
// with stream.write, messages read from a queue fed by the decoder.
class WSStream {
  constructor(name, stream) {
    this.name = name;
    this.stream = stream;
    this.decoder = new FrameDecoder();
    this.queue = []; // whole messages and control frames
    this.waiters = [];
    this.partial = null; // { opcode, parts } of a fragmented message
    // ended settles when the server's side of the stream is over: END_STREAM
    // resolves it, a RST_STREAM first rejects it with the error code.
    this.ended = new Promise((resolve, reject) => {
      stream.once('end', resolve);
      stream.once('close', () =>
        reject(new Error(`${name}: stream reset (RST_STREAM code ${stream.rstCode}) before END_STREAM`)),
      );
    });
    this.ended.catch(() => {});
    this.failure = null;
    stream.on('data', (chunk) => {
      try {
        this.decoder.push(chunk);
        for (let f; (f = this.decoder.next()) !== null; ) this.frame(f);
      } catch (err) {
        this.fail(err);
      }
    });
    stream.on('end', () => this.fail(new Error('stream ended (END_STREAM)')));
    stream.on('error', (err) => this.fail(err));
  }

  // frame assembles data frames into messages (RFC 6455 §5.4); control
  // frames may come between fragments and are queued at once.
  frame(f) {
    if (f.opcode >= 0x8) {
      if (!f.fin || f.payload.length > 125) throw new Error(`bad control frame: fin ${f.fin}, ${f.payload.length} bytes`);
      return this.deliver({ opcode: f.opcode, payload: f.payload });
    }
    if (f.opcode === OP.cont) {
      if (!this.partial) throw new Error('continuation frame without a message');
      this.partial.parts.push(f.payload);
    } else if (f.opcode === OP.text || f.opcode === OP.binary) {
      if (this.partial) throw new Error('new message before the last one ended');
      this.partial = { opcode: f.opcode, parts: [f.payload] };
    } else {
      throw new Error(`reserved opcode ${f.opcode}`);
    }
    if (f.fin) {
      const m = { opcode: this.partial.opcode, payload: Buffer.concat(this.partial.parts) };
      this.partial = null;
      this.deliver(m);
    }
  }

  deliver(m) {
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.queue.push(m);
  }

  fail(err) {
    if (!this.failure) this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  // recv returns the next message or control frame.
  recv() {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  send(opcode, payload) {
    return new Promise((resolve, reject) =>
      this.stream.write(encodeFrame(opcode, payload), (err) => (err ? reject(err) : resolve())),
    );
  }

  // expect sends one frame and checks the server's answer.
  async expect(what, sendOp, payload, wantOp, want) {
    await this.send(sendOp, payload);
    const m = await this.recv();
    if (m.opcode !== wantOp || !m.payload.equals(want)) {
      throw new Error(
        `${this.name}: ${what}: sent ${opName[sendOp]} of ${payload.length} bytes, ` +
          `got ${opName[m.opcode] ?? m.opcode} of ${m.payload.length} bytes ` +
          `(${m.payload.subarray(0, 16).toString('hex')}); want ${opName[wantOp]} of ${want.length} bytes`,
      );
    }
  }

  echo(what, opcode, payload) {
    return this.expect(what, opcode, payload, opcode, payload);
  }

  // close runs the close handshake (RFC 6455 §7.1.2): our close frame,
  // the server's close frame with the same code (§5.5.1), then the end of
  // the server's side of the stream, END_STREAM, which stands for the TCP
  // close of RFC 6455 (RFC 8441 §5). Then we end ours.
  async close(code) {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    await this.send(OP.close, Buffer.concat([p, Buffer.from('bye')]));
    const m = await this.recv();
    if (m.opcode !== OP.close || m.payload.length < 2 || m.payload.readUInt16BE(0) !== code) {
      throw new Error(`${this.name}: close ${code}: got ${opName[m.opcode] ?? m.opcode} ${m.payload.toString('hex')}; want close ${code}`);
    }
    const timer = new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${this.name}: no END_STREAM within ${timeoutMs} ms of the close`)), timeoutMs).unref(),
    );
    await Promise.race([this.ended, timer]);
    this.stream.end();
  }
}

// request opens an extended CONNECT stream (RFC 8441 §4) and resolves with
// the stream and the response headers.
function request(session, url, version) {
  const stream = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': url.pathname,
      ':authority': url.host,
      'sec-websocket-version': version,
    },
    { endStream: false },
  );
  return new Promise((resolve, reject) => {
    stream.once('response', (headers) => resolve({ stream, headers }));
    stream.once('error', reject);
  });
}

async function openSocket(session, url, name) {
  const { stream, headers } = await request(session, url, '13');
  if (headers[':status'] !== 200) throw new Error(`${name}: extended CONNECT answered ${headers[':status']}; want 200`);
  return new WSStream(name, stream);
}

// refused checks that a version the server does not speak gets 426 with
// the version it does (RFC 6455 §4.4).
async function refused(session, url) {
  const { stream, headers } = await request(session, url, '8');
  stream.resume();
  stream.end();
  if (headers[':status'] !== 426) throw new Error(`Sec-WebSocket-Version 8 answered ${headers[':status']}; want 426`);
  if (headers['sec-websocket-version'] !== '13') {
    throw new Error(`426 carries Sec-WebSocket-Version ${JSON.stringify(headers['sec-websocket-version'])}; want "13"`);
  }
  await new Promise((resolve) => (stream.closed ? resolve() : stream.once('close', resolve)));
}

async function exchange(ws, i) {
  await ws.echo('text', OP.text, Buffer.from(`hello from socket ${i}`));
  await ws.echo('empty text', OP.text, Buffer.alloc(0));
  await ws.echo('multi-byte text', OP.text, Buffer.from('héllo wörld ✓ '.repeat(20)));
  await ws.echo('binary of 125 bytes (7-bit length)', OP.binary, randomBytes(125));
  await ws.echo('binary of 126 bytes (16-bit length)', OP.binary, randomBytes(126));
  await ws.echo('binary of 65535 bytes (16-bit length)', OP.binary, randomBytes(65535));
  await ws.echo('binary of 100 KiB (64-bit length)', OP.binary, randomBytes(100 << 10));
  const ping = Buffer.from(`ping ${i}`);
  await ws.expect('ping', OP.ping, ping, OP.pong, ping);
  await ws.close(1000);
}

async function main() {
  const arg = process.argv[2];
  if (!arg) throw new Error('usage: node h2-client.mjs https://host:port/path');
  const url = new URL(arg.replace(/^wss:/, 'https:'));
  const session = http2.connect(url.origin, { rejectUnauthorized: false });
  session.on('error', (err) => console.error(`session error: ${err.message}`));
  await new Promise((resolve, reject) => {
    session.once('remoteSettings', resolve);
    session.once('error', reject);
  });
  if (session.remoteSettings.enableConnectProtocol !== true) {
    throw new Error(`server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL: ${JSON.stringify(session.remoteSettings)}`);
  }
  await refused(session, url);
  // The three sockets are open together on the one session.
  const sockets = await Promise.all([0, 1, 2].map((i) => openSocket(session, url, `socket ${i}`)));
  await Promise.all(sockets.map((ws, i) => exchange(ws, i)));
  await new Promise((resolve) => session.close(resolve));
  console.log('OK');
}

const watchdog = setTimeout(() => {
  console.error(`h2-client: not done within ${runMs} ms (DUPLEX_TEST_RUN_MS)`);
  process.exit(1);
}, runMs);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err.stack ?? String(err));
    process.exit(1);
  },
);
