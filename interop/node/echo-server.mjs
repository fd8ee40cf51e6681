// Node ws echo server for duplex's interop tests. It listens on
// 127.0.0.1:0, prints "PORT <n>" and serves the command protocol of
// ../README.md until killed. Flags: see deflateOptions in common.mjs.
import { WebSocketServer } from 'ws';
import { deflateOptions, pattern, waitMs } from './common.mjs';

// closes: what each connection's close frame said, by the id in its path.
const closes = new Map();
function closeEntry(id) {
  let e = closes.get(id);
  if (!e) {
    e = {};
    e.seen = new Promise((resolve) => (e.resolve = resolve));
    closes.set(id, e);
  }
  return e;
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: deflateOptions(process.argv.slice(2)),
  maxPayload: 64 << 20,
});
wss.on('listening', () => console.log(`PORT ${wss.address().port}`));
wss.on('connection', (ws, req) => {
  const id = req.url.replace(/^\/c\//, '');
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString('latin1', 0, 4) === 'cmd:') {
      command(ws, data.toString()).catch((err) => console.error(`connection ${id}: ${err.stack}`));
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    // ws reports 1005 for a close frame without a code and 1006 for none.
    const seen = code === 1005 || code === 1006 ? `none: close event ${code}` : `${code} ${reason}`;
    closeEntry(id).resolve(seen);
  });
  ws.on('error', (err) => console.error(`connection ${id}: ${err.message}`));
});

function timeout(ms, value) {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref());
}

async function command(ws, text) {
  const [, cmd, arg] = text.match(/^cmd:(\S*) ?(.*)$/s);
  switch (cmd) {
    case 'ping': {
      const payload = Buffer.from('ws ping');
      const pong = new Promise((resolve) =>
        ws.once('pong', (p) => resolve(p.equals(payload) ? 'pong' : `pong with payload ${p}`)),
      );
      ws.ping(payload);
      ws.send(await Promise.race([pong, timeout(waitMs(), 'no pong')]));
      break;
    }
    case 'fragmented': {
      const p = pattern(Number(arg));
      for (let i = 0; i < p.length; i += 4096) {
        ws.send(p.subarray(i, i + 4096), { binary: true, fin: i + 4096 >= p.length });
      }
      break;
    }
    case 'close': {
      const [, code, reason] = arg.match(/^(\d+) ?(.*)$/s);
      ws.close(Number(code), reason);
      break;
    }
    case 'closed':
      ws.send(await Promise.race([closeEntry(arg).seen, timeout(waitMs(), `none: connection ${arg} has not ended`)]));
      break;
    default:
      ws.send(`unknown command ${JSON.stringify(cmd)}`);
  }
}
