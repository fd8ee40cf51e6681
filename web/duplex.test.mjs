// Unit tests for duplex.js without a browser: run with `node --test web/`.
// A fake WebSocket and fetch are injected through the options.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, DISCONNECTED, DuplexSocket, tokenExpiry, TOKEN_EXPIRED } from './duplex.js';

/** FakeWebSocket records what is sent; the test drives open and close. */
class FakeWebSocket {
  static made = [];
  static waiters = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.made.push(this);
    const n = FakeWebSocket.made.length;
    for (const [want, resolve] of FakeWebSocket.waiters) if (want === n) resolve(this);
    FakeWebSocket.waiters = FakeWebSocket.waiters.filter(([want]) => want > n);
  }
  /** nth resolves with the n-th socket constructed (1-based). */
  static nth(n) {
    if (FakeWebSocket.made.length >= n) return Promise.resolve(FakeWebSocket.made[n - 1]);
    return new Promise((resolve) => FakeWebSocket.waiters.push([n, resolve]));
  }
  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }
  close(code = 1000, reason = '') { this.serverClose(code, reason); }
  // Test side.
  serverOpen() { this.readyState = 1; this.onopen?.({}); }
  serverSend(data) { this.onmessage?.({ data }); }
  serverClose(code, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** newSocket returns a DuplexSocket on fakes, closed when the test ends. */
function newSocket(t, opts = {}) {
  FakeWebSocket.made = [];
  FakeWebSocket.waiters = [];
  const s = new DuplexSocket('ws://test/ws', { WebSocket: FakeWebSocket, pingInterval: 0, ...opts });
  t.after(() => s.close());
  return s;
}

/** nextState resolves with the detail of the next state event named want. */
function nextState(s, want, ms = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${want}" state within ${ms} ms; state is ${s.state}`)), ms);
    s.addEventListener('state', function on(e) {
      if (e.detail.state !== want) return;
      clearTimeout(timer);
      s.removeEventListener('state', on);
      resolve(e.detail);
    });
  });
}

test('backoffDelay doubles up to the cap with full jitter', () => {
  const top = () => 1 - Number.EPSILON; // rand at its maximum: the ceiling
  const cases = [
    // attempt, min, max, want ceiling
    [1, 500, 30000, 500],
    [2, 500, 30000, 1000],
    [3, 500, 30000, 2000],
    [7, 500, 30000, 30000], // 500·2^6 = 32000, capped
    [1000, 500, 30000, 30000], // no overflow to Infinity or NaN
    [5, 0, 30000, 0],
  ];
  for (const [attempt, min, max, want] of cases) {
    const got = backoffDelay(attempt, min, max, top);
    assert.ok(got <= want && got >= want - 1, `backoffDelay(${attempt}, ${min}, ${max}, top) = ${got}; want ~${want}`);
    assert.equal(backoffDelay(attempt, min, max, () => 0), 0, 'full jitter starts at 0');
    assert.equal(backoffDelay(attempt, min, max, () => 0.5), Math.floor(want / 2));
  }
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(4, 500, 30000);
    assert.ok(Number.isInteger(d) && d >= 0 && d < 4000, `backoffDelay(4) = ${d}; want integer in [0, 4000)`);
  }
});

test('sends while disconnected are flushed in order on open', async (t) => {
  const s = newSocket(t);
  assert.equal(s.send('a'), true);
  await nextState(s, 'connecting');
  assert.equal(s.send('b'), true);
  assert.equal(s.send('c'), true);
  assert.equal(s.queued, 3);
  const ws = FakeWebSocket.made[0];
  assert.deepEqual(ws.sent, []);
  ws.serverOpen();
  assert.equal(s.state, 'open');
  assert.equal(s.send('d'), true);
  assert.deepEqual(ws.sent, ['a', 'b', 'c', 'd']);
  assert.equal(s.queued, 0);
});

test('the queue holds at most maxQueue sends', async (t) => {
  const s = newSocket(t, { maxQueue: 2 });
  assert.equal(s.send(1), true);
  assert.equal(s.send(2), true);
  assert.equal(s.send(3), false, 'send on a full queue');
  assert.equal(s.queued, 2);
  await nextState(s, 'connecting');
  FakeWebSocket.made[0].serverOpen();
  assert.deepEqual(FakeWebSocket.made[0].sent, [1, 2]);
});

test('a dropped connection reconnects with backoff and flushes again', async (t) => {
  const s = newSocket(t, { minDelay: 1, maxDelay: 5 });
  await nextState(s, 'connecting');
  FakeWebSocket.made[0].serverOpen();
  const closed = nextState(s, 'closed');
  const reconnecting = nextState(s, 'reconnecting');
  FakeWebSocket.made[0].serverClose(1006);
  assert.deepEqual(await closed, { state: 'closed', attempt: 0, code: 1006, reason: '' });
  const r = await reconnecting;
  assert.equal(r.attempt, 1);
  assert.ok(r.delay >= 0 && r.delay < 1, `delay ${r.delay} for attempt 1 with minDelay 1`);
  assert.equal(s.send('x'), true);
  await nextState(s, 'connecting');
  assert.equal(FakeWebSocket.made.length, 2);
  FakeWebSocket.made[1].serverOpen();
  assert.deepEqual(FakeWebSocket.made[1].sent, ['x']);
});

test('maxAttempts failures in a row stop', async (t) => {
  const s = newSocket(t, { minDelay: 1, maxDelay: 1, maxAttempts: 2 });
  const stopped = nextState(s, 'stopped');
  for (let i = 0; i < 3; i++) {
    await nextState(s, 'connecting');
    FakeWebSocket.made[i].serverClose(1006);
  }
  assert.equal((await stopped).attempt, 3);
  assert.equal(FakeWebSocket.made.length, 3);
  assert.equal(s.send('late'), false, 'send after stopped');
});

test('a 401 from the auth check stops without opening a WebSocket', async (t) => {
  const calls = [];
  const fetch = async (url, init) => { calls.push([url, init.headers]); return { status: 401, statusText: 'Unauthorized' }; };
  const s = newSocket(t, { fetch, authCheckURL: '/api/auth-check?token=bad', token: 'bad', minDelay: 1 });
  const d = await nextState(s, 'unauthorized');
  assert.equal(d.code, 401);
  assert.deepEqual(calls, [['/api/auth-check?token=bad', { Authorization: 'Bearer bad' }]]);
  assert.equal(FakeWebSocket.made.length, 0);
  assert.equal(s._retryTimer, null, 'a retry is scheduled after unauthorized');
  assert.equal(s.send('x'), false, 'send while unauthorized');

  // reconnect() with a new token tries again.
  const good = async () => ({ status: 204 });
  s.reconnect({ fetch: good, authCheckURL: '/api/auth-check?token=good' });
  (await FakeWebSocket.nth(1)).serverOpen();
  assert.equal(s.state, 'open');
});

test('an unreachable auth check means reconnecting, not unauthorized', async (t) => {
  const fetch = async () => { throw new TypeError('Failed to fetch'); };
  const s = newSocket(t, { fetch, authCheckURL: '/api/auth-check', minDelay: 1 });
  const d = await nextState(s, 'reconnecting');
  assert.equal(d.attempt, 1);
  assert.match(d.reason, /Failed to fetch/);
  assert.equal(FakeWebSocket.made.length, 0);
});

test('pongs give an RTT and are not messages', async (t) => {
  const s = newSocket(t, { pingInterval: 60000 });
  const messages = [];
  s.addEventListener('message', (e) => messages.push(e.detail.data));
  const rtt = new Promise((resolve) => s.addEventListener('rtt', (e) => resolve(e.detail.ms)));
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  ws.serverOpen();
  const ping = JSON.parse(ws.sent[0]);
  assert.equal(ping.type, 'ping');
  ws.serverSend(JSON.stringify({ type: 'pong', t: ping.t }));
  ws.serverSend('received: hi');
  const ms = await rtt;
  assert.ok(ms >= 0 && ms < 1000, `rtt = ${ms}`);
  assert.deepEqual(messages, ['received: hi']);
});

test('subscriptions resume from the last offset after a reconnect', async (t) => {
  const s = newSocket(t, { minDelay: 1, maxDelay: 1 });
  const got = [];
  s.addEventListener('message', (e) => got.push([e.detail.channel, e.detail.offset, e.detail.payload]));
  s.subscribe('news');
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  ws.serverOpen();
  assert.deepEqual(ws.sent.map((m) => JSON.parse(m)), [{ type: 'subscribe', channel: 'news' }]);
  ws.serverSend(JSON.stringify({ type: 'message', channel: 'news', offset: 7, data: 'a' }));
  ws.serverSend(JSON.stringify({ type: 'message', channel: 'news', offset: 6, data: 'old' }));
  ws.serverSend(JSON.stringify({ type: 'message', channel: 'other', offset: 1, data: 'b' }));
  assert.deepEqual(got, [['news', 7, 'a'], ['news', 6, 'old'], ['other', 1, 'b']]);

  ws.serverClose(1006);
  await nextState(s, 'connecting');
  FakeWebSocket.made[1].serverOpen();
  assert.deepEqual(FakeWebSocket.made[1].sent.map((m) => JSON.parse(m)),
    [{ type: 'subscribe', channel: 'news', since: 7 }], 'only subscribed channels, offset never moving back');
});

/** jwt returns an unsigned JWT-shaped token with claims (the client never verifies). */
function jwt(claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}.c2ln`;
}

/** nextEvent resolves with the detail of the next event named type. */
function nextEvent(s, type, ms = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" event within ${ms} ms`)), ms);
    s.addEventListener(type, (e) => { clearTimeout(timer); resolve(e.detail); }, { once: true });
  });
}

test('tokenExpiry reads exp from a JWT and nothing else', () => {
  assert.equal(tokenExpiry(jwt({ sub: 'a', exp: 1795568172 })), 1795568172);
  assert.equal(tokenExpiry(jwt({ sub: 'a' })), undefined);
  assert.equal(tokenExpiry(jwt({ exp: 'soon' })), undefined);
  assert.equal(tokenExpiry('static-token'), undefined);
  assert.equal(tokenExpiry(undefined), undefined);
});

test('refreshToken is called before exp and the new token is sent on the open socket', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const first = jwt({ sub: 'ada', exp: now + 3600 });
  const second = jwt({ sub: 'ada', exp: now + 7200 });
  let calls = 0;
  const refreshToken = async () => { calls++; return second; };
  FakeWebSocket.made = [];
  FakeWebSocket.waiters = [];
  // refreshBefore reaches back past now: the refresh is due at once (the
  // client still waits its one-second floor).
  const s = new DuplexSocket('ws://test/ws?token=' + first, {
    WebSocket: FakeWebSocket, pingInterval: 0, refreshToken, refreshBefore: 3600 * 1000, minDelay: 1, maxDelay: 1,
  });
  t.after(() => s.close());
  const messages = [];
  s.addEventListener('message', (e) => messages.push(e.detail.data));
  const ws = await FakeWebSocket.nth(1);
  ws.serverOpen();
  assert.equal(s.token, first);

  await waitUntil(() => ws.sent.length === 1, 3000);
  assert.deepEqual(JSON.parse(ws.sent[0]), { type: 'refresh', token: second });
  assert.equal(calls, 1);
  assert.equal(s.token, second);

  const refreshed = nextEvent(s, 'refresh');
  ws.serverSend(JSON.stringify({ type: 'refreshed', exp: now + 7200 }));
  assert.deepEqual(await refreshed, { exp: now + 7200 });
  assert.deepEqual(messages, [], '"refreshed" is not a message');

  // A later reconnect uses the new token.
  ws.serverClose(1006);
  const ws2 = await FakeWebSocket.nth(2);
  assert.equal(new URL(ws2.url).searchParams.get('token'), second);
});

test('a 4401 close gets a new token before reconnecting', async (t) => {
  const tokens = ['t2', 't3'];
  const s = newSocket(t, {
    refreshToken: async () => tokens.shift(), minDelay: 1, maxDelay: 1,
    authCheckURL: '/api/auth-check?token=t1', fetch: async () => ({ status: 204 }),
  });
  s.url = 'ws://test/ws?token=t1';
  const ws = await FakeWebSocket.nth(1);
  ws.serverOpen();
  ws.serverClose(TOKEN_EXPIRED, 'token expired');
  const ws2 = await FakeWebSocket.nth(2);
  assert.equal(new URL(ws2.url).searchParams.get('token'), 't2');
  assert.equal(s.opts.authCheckURL, '/api/auth-check?token=t2');
  assert.equal(s.token, 't2');

  // A failing callback is reported, and the client still retries.
  s.opts.refreshToken = async () => { throw new Error('idp down'); };
  ws2.serverOpen();
  const failed = nextEvent(s, 'refresh');
  ws2.serverClose(TOKEN_EXPIRED, 'refresh refused: token expired');
  assert.deepEqual(await failed, { error: 'idp down' });
  await FakeWebSocket.nth(3);
});

/** waitUntil polls cond every 10 ms until it holds, or fails after ms. */
async function waitUntil(cond, ms) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('an auth check refusing a kept token asks refreshToken once, then gives up', async (t) => {
  const checked = [];
  const fetch = async (url) => {
    checked.push(url);
    return { status: url.endsWith('token=good') ? 204 : 401, statusText: 'Unauthorized' };
  };
  const fresh = ['good', 'bad2'];
  const s = newSocket(t, { fetch, authCheckURL: '/api/auth-check?token=old', refreshToken: async () => fresh.shift(), minDelay: 1 });
  s.url = 'ws://test/ws?token=old';
  const ws = await FakeWebSocket.nth(1);
  assert.deepEqual(checked, ['/api/auth-check?token=old', '/api/auth-check?token=good']);
  assert.equal(new URL(ws.url).searchParams.get('token'), 'good');
  ws.serverOpen();

  // Later the kept token is refused, and so is the new one: unauthorized.
  s.opts.authCheckURL = '/api/auth-check?token=revoked';
  const unauthorized = nextState(s, 'unauthorized');
  ws.serverClose(1006);
  assert.equal((await unauthorized).code, 401);
  assert.deepEqual(checked.slice(2), ['/api/auth-check?token=revoked', '/api/auth-check?token=bad2']);
  assert.equal(FakeWebSocket.made.length, 1);
});

// Issue 16: server-side subscriptions, join/leave, presence, rpc, 4403.

test('server-side subscriptions resume with since in the URL', async (t) => {
  const s = newSocket(t, { minDelay: 1, maxDelay: 1 });
  const subs = [];
  s.addEventListener('subscribed', (e) => subs.push([e.detail.channel, e.detail.recovered]));
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  assert.equal(ws.url, 'ws://test/ws', 'nothing to resume on the first connection');
  ws.serverOpen();
  // Unasked: the server subscribed the page (its token's subs).
  ws.serverSend(JSON.stringify({ type: 'subscribed', channel: 'user/ada', offset: 40, recovered: false }));
  ws.serverSend(JSON.stringify({ type: 'message', channel: 'user/ada', offset: 41, data: 1 }));
  assert.deepEqual(ws.sent, [], 'the page sends no subscribe for it');
  assert.equal(s.serverChannels.get('user/ada'), 41);

  ws.serverClose(1006);
  await nextState(s, 'connecting');
  const ws2 = FakeWebSocket.made[1];
  assert.equal(new URL(ws2.url).searchParams.get('since'), 'user/ada:41');
  ws2.serverOpen();
  assert.deepEqual(ws2.sent, []);
  // A connection lost before the server resubscribed keeps the offsets.
  ws2.serverClose(1006);
  await nextState(s, 'connecting');
  const ws3 = FakeWebSocket.made[2];
  assert.equal(new URL(ws3.url).searchParams.get('since'), 'user/ada:41');
  ws3.serverOpen();
  ws3.serverSend(JSON.stringify({ type: 'subscribed', channel: 'user/ada', offset: 43, recovered: true }));
  assert.equal(s.serverChannels.get('user/ada'), 41, 'the replay that follows moves it on');
  ws3.serverSend(JSON.stringify({ type: 'message', channel: 'user/ada', offset: 42, data: 2 }));
  assert.equal(s.serverChannels.get('user/ada'), 42);
  assert.deepEqual(subs, [['user/ada', false], ['user/ada', true]]);

  const un = nextEvent(s, 'unsubscribed');
  ws3.serverSend(JSON.stringify({ type: 'unsubscribed', channel: 'user/ada' }));
  assert.deepEqual(await un, { channel: 'user/ada' });
  assert.equal(s.serverChannels.has('user/ada'), false);
});

test('join and leave are events, not messages', async (t) => {
  const s = newSocket(t);
  const msgs = [];
  s.addEventListener('message', (e) => msgs.push(e.detail.data));
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  ws.serverOpen();
  const join = nextEvent(s, 'join');
  ws.serverSend(JSON.stringify({ type: 'join', channel: 'room/1', client: 'ab12.7', user: 'bob' }));
  assert.deepEqual(await join, { channel: 'room/1', client: 'ab12.7', user: 'bob' });
  const leave = nextEvent(s, 'leave');
  ws.serverSend(JSON.stringify({ type: 'leave', channel: 'room/1', client: 'ab12.7', user: 'bob' }));
  assert.deepEqual(await leave, { channel: 'room/1', client: 'ab12.7', user: 'bob' });
  assert.deepEqual(msgs, []);
});

test('presence and rpc resolve with their answers', async (t) => {
  const s = newSocket(t);
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  ws.serverOpen();

  const p = s.presence('room/1');
  assert.deepEqual(JSON.parse(ws.sent.at(-1)), { type: 'presence', channel: 'room/1' });
  ws.serverSend(JSON.stringify({ type: 'presence', channel: 'room/1', clients: [{ client: 'a.1', user: 'ada' }] }));
  assert.deepEqual(await p, [{ client: 'a.1', user: 'ada' }]);

  // Two requests for one channel in flight: the answer to the older one
  // is stale, so both get the newer answer.
  const older = s.presence('room/1');
  const newer = s.presence('room/1');
  let settled = false;
  older.then(() => { settled = true; });
  ws.serverSend(JSON.stringify({ type: 'presence', channel: 'room/1', clients: [{ client: 'a.1', user: 'ada' }] }));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, false, 'the older answer settled a request made after it was asked');
  const both = [{ client: 'a.1', user: 'ada' }, { client: 'b.1', user: 'bob' }];
  ws.serverSend(JSON.stringify({ type: 'presence', channel: 'room/1', clients: both }));
  assert.deepEqual(await older, both);
  assert.deepEqual(await newer, both);

  const refused = s.presence('lobby');
  ws.serverSend(JSON.stringify({ type: 'error', error: 'presence not enabled for this channel', channel: 'lobby' }));
  await assert.rejects(refused, /presence not enabled/);

  const r1 = s.rpc('sum', [1, 2]);
  const r2 = s.rpc('nope');
  const [m1, m2] = ws.sent.slice(-2).map((m) => JSON.parse(m));
  assert.deepEqual(m1, { type: 'rpc', id: m1.id, method: 'sum', data: [1, 2] });
  assert.notEqual(m1.id, m2.id);
  ws.serverSend(JSON.stringify({ type: 'rpc', id: m2.id, error: 'hook timeout' }));
  ws.serverSend(JSON.stringify({ type: 'rpc', id: m1.id, data: 3 }));
  assert.equal(await r1, 3);
  await assert.rejects(r2, /hook timeout/);

  const lost = s.rpc('slow');
  ws.serverClose(1006);
  await assert.rejects(lost, /connection closed/);
  await assert.rejects(s.rpc('x'), /not connected/);
});

test('a 4403 close (the server API disconnect) stops without reconnecting', async (t) => {
  const s = newSocket(t, { minDelay: 1, maxDelay: 1 });
  await nextState(s, 'connecting');
  FakeWebSocket.made[0].serverOpen();
  const stopped = nextState(s, 'stopped');
  FakeWebSocket.made[0].serverClose(DISCONNECTED, 'disconnected');
  assert.deepEqual(await stopped, { state: 'stopped', attempt: 0, code: 4403, reason: 'disconnected' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeWebSocket.made.length, 1, 'no new connection');
  assert.equal(s.state, 'stopped');
});

test('the late answer to a subscribe taken back is not a server-side subscription', async (t) => {
  const s = newSocket(t);
  await nextState(s, 'connecting');
  const ws = FakeWebSocket.made[0];
  ws.serverOpen();
  s.subscribe('news');
  s.unsubscribe('news');
  ws.serverSend(JSON.stringify({ type: 'subscribed', channel: 'news', offset: 5, recovered: false }));
  assert.equal(s.serverChannels.has('news'), false);
  // A later one, unasked, is the server's.
  ws.serverSend(JSON.stringify({ type: 'subscribed', channel: 'news', offset: 6, recovered: false }));
  assert.equal(s.serverChannels.get('news'), 6);
});
