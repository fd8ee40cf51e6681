// Shared by echo-server.mjs and client.mjs: the options, payloads and close
// codes of duplex's interop protocol (../README.md).

// deflateOptions maps the command-line flags to ws's perMessageDeflate
// option: false without --deflate.
//
//   --deflate                       offer or accept permessage-deflate
//   --server-no-context-takeover    serverNoContextTakeover: true
//   --client-no-context-takeover    clientNoContextTakeover: true
//   --server-max-window-bits=N      serverMaxWindowBits: N
//   --client-max-window-bits=N      clientMaxWindowBits: N
export function deflateOptions(args) {
  if (!args.includes('--deflate')) return false;
  const o = {};
  for (const a of args) {
    const [flag, value] = a.split('=');
    switch (flag) {
      case '--deflate':
        break;
      case '--server-no-context-takeover':
        o.serverNoContextTakeover = true;
        break;
      case '--client-no-context-takeover':
        o.clientNoContextTakeover = true;
        break;
      case '--server-max-window-bits':
        o.serverMaxWindowBits = Number(value);
        break;
      case '--client-max-window-bits':
        o.clientMaxWindowBits = Number(value);
        break;
      default:
        if (flag.startsWith('--')) throw new Error(`unknown flag ${a}`);
    }
  }
  return o;
}

// pattern is the payload of "cmd:fragmented n": a 32-bit linear
// congruential generator from seed 1, bits 16-23 of each step, the same
// bytes as the Go tests' pattern().
export function pattern(n) {
  const p = Buffer.alloc(n);
  let x = 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    p[i] = (x >>> 16) & 0xff;
  }
  return p;
}

// Waits scale with the bytes of a step, as in the Go tests (testkit.Timeout,
// which sets these variables): DUPLEX_TEST_WAIT_MS plus n bytes at
// DUPLEX_TEST_RATE bytes a second. DUPLEX_TEST_RUN_MS bounds a whole run.
const waitBaseMs = Number(process.env.DUPLEX_TEST_WAIT_MS) || 20000;
const waitRate = Number(process.env.DUPLEX_TEST_RATE) || 256 << 10;
export const waitMs = (n = 0) => waitBaseMs + Math.ceil((n * 1000) / waitRate);
export const runMs = Number(process.env.DUPLEX_TEST_RUN_MS) || 600000;

export const closeCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999];

export const closeReason = (code) => `reason ${code} ✓`;
