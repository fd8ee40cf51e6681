// duplex.js: a browser WebSocket client that stays connected.
//
// A dependency-free ES module, served as is by `duplex serve` at /duplex.js.
// DuplexSocket wraps the browser WebSocket and adds what every real page
// rewrites by hand: reconnection with capped exponential backoff, a bounded
// queue for sends made while disconnected, detection of a rejected token,
// an application-level round-trip time, and channel subscriptions that
// resume from the last offset seen.
//
//   import { connect } from '/duplex.js';
//   const sock = connect('wss://example.com/ws?token=T',
//                        { authCheckURL: '/api/auth-check?token=T' });
//   sock.addEventListener('message', (e) => console.log(e.detail.data));
//   sock.send('hello'); // queued until the socket is open

/** readyState of an open WebSocket, per the WHATWG WebSockets standard. */
const OPEN = 1;

/**
 * Close code of a session whose token expired or whose refresh was
 * refused (docs/protocol.md, "Token lifetime").
 */
export const TOKEN_EXPIRED = 4401;

/**
 * Close code of a session the server ended with its API's /api/disconnect
 * (docs/protocol.md): the socket stops and does not reconnect, as after a
 * refused token.
 */
export const DISCONNECTED = 4403;

/**
 * tokenExpiry returns the "exp" claim of a JWT in Unix seconds, or
 * undefined if token is not a JWT with a numeric exp. The signature is not
 * checked: the result only schedules refreshes, the server decides.
 *
 * @param {string} token
 * @returns {number|undefined}
 */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - part.length % 4) % 4);
    const exp = JSON.parse(atob(b64)).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * backoffDelay returns how long to wait before reconnection attempt
 * `attempt` (1 for the first retry): a uniformly random delay in
 * [0, min(max, min·2^(attempt-1))), the "full jitter" of
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
 * The jitter spreads the reconnections of many clients dropped at once, so
 * a restarted server is not hit by all of them in the same instant.
 *
 * @param {number} attempt 1-based attempt number
 * @param {number} [min=500] base delay in milliseconds
 * @param {number} [max=30000] ceiling in milliseconds
 * @param {() => number} [rand=Math.random] returns a number in [0, 1)
 * @returns {number} whole milliseconds
 */
export function backoffDelay(attempt, min = 500, max = 30000, rand = Math.random) {
  // Clamp the exponent so a huge attempt count cannot make 0·Infinity = NaN.
  const ceiling = Math.min(max, min * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  return Math.floor(rand() * ceiling);
}

/**
 * @typedef {object} DuplexOptions
 * @property {string|(() => string)} [authCheckURL] fetched before every
 *   attempt; 401 or 403 means the credentials are rejected. Browsers hide
 *   the HTTP status of a failed WebSocket handshake (it is only close code
 *   1006), so without this a bad token is retried forever.
 * @property {string} [token] sent to authCheckURL as "Authorization: Bearer".
 *   The WebSocket itself cannot carry headers: put the token in its URL.
 * @property {number} [minDelay=500] backoff base in milliseconds
 * @property {number} [maxDelay=30000] backoff ceiling in milliseconds
 * @property {number} [maxAttempts=Infinity] failed attempts in a row before
 *   giving up with state "stopped"
 * @property {number} [maxQueue=1000] sends held while disconnected
 * @property {number} [pingInterval=10000] milliseconds between RTT pings;
 *   0 turns them off
 * @property {() => (string|Promise<string>)} [refreshToken] returns a new
 *   token for the same user. Called refreshBefore ms before the current
 *   token's exp (read from the JWT) to send {"type":"refresh"} on the open
 *   connection, and after a close with 4401 (expired or refused) before
 *   reconnecting. The new token replaces `token` and the "token" query
 *   parameter of a string URL (a URL function can read `sock.token`). A throw or rejection is reported as a `refresh`
 *   event with `error`; the next attempt comes with the next reconnect.
 *   An auth check refusing a token kept from an earlier connection also
 *   asks for a new one, once, before the state turns "unauthorized".
 * @property {number} [refreshBefore=60000] milliseconds before exp to refresh
 * @property {typeof WebSocket} [WebSocket] constructor, for tests
 * @property {typeof fetch} [fetch] fetch function, for tests
 */

/**
 * DuplexSocket is a WebSocket that reconnects. It starts connecting in a
 * microtask, so listeners added right after `new` see every event.
 *
 * Events (CustomEvent, payload in `detail`):
 * - `state`: {state, code, reason, attempt, delay}, where state is
 *   "connecting", "open", "closed" (the socket closed; always followed by
 *   "reconnecting" or "stopped"), "reconnecting" (waiting
 *   `delay` ms before attempt `attempt`), "unauthorized" (the auth check
 *   answered 401/403; no more retries until reconnect()) or "stopped"
 *   (close() was called, maxAttempts was reached or the URL is invalid).
 * - `message`: {data, channel, offset, payload}: data as received; for a
 *   channel message {"type":"message","channel","offset","data"} channel,
 *   offset and payload (its parsed "data") are set too.
 * - `subscribed`: {channel, offset, recovered}: the server's answer to a
 *   subscribe (docs/protocol.md). recovered false means messages were lost
 *   (the gap was older than the server's history, or it is the first
 *   subscribe): reload the channel's state. The server may send it unasked
 *   when a subscription could not be kept whole. It is also a `message`.
 * - `rtt`: {ms}: the round trip of the last ping.
 * - `refresh`: {exp} when the server accepted a refreshed token (exp in
 *   Unix seconds, 0 for none), or {error} when refreshToken failed.
 * - `join` / `leave`: {channel, client, user}: another client subscribed
 *   to or left a channel with join/leave events (--join-leave).
 * - `unsubscribed`: {channel}: the server ended a subscription (its
 *   /api/unsubscribe); the channel is forgotten.
 *
 * Server-side subscriptions (a JWT's subs claim, the connect hook, the
 * server's /api/subscribe) arrive as `subscribed` events for channels the
 * page did not ask for; they are kept in `serverChannels` and resumed on
 * reconnect with "since" query parameters, which the server reads.
 *
 * Wire conventions (text frames, JSON): the client sends
 * {"type":"ping","t":ms} and expects {"type":"pong","t":ms} with the same t;
 * pongs are consumed, never emitted as messages. Browsers cannot send
 * WebSocket ping frames, hence the application-level ping. Likewise
 * {"type":"refreshed"} answers are consumed and become `refresh` events.
 */
export class DuplexSocket extends EventTarget {
  /**
   * @param {string|(() => string)} url ws: or wss: URL, or a function
   *   returning it, called before every attempt
   * @param {DuplexOptions} [opts]
   */
  constructor(url, opts = {}) {
    super();
    this.url = url;
    this.opts = merge({ minDelay: 500, maxDelay: 30000, maxAttempts: Infinity, maxQueue: 1000, pingInterval: 10000, refreshBefore: 60000 }, opts);
    this._state = 'connecting';
    this._ws = null;
    this._queue = [];
    this._attempt = 0;
    this._gen = 0; // bumped by every start; stale callbacks compare and bail
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastPing = null; // {t, at}: t as sent, at = performance.now() then
    this._refreshTimer = null;
    this._refreshing = null; // the running refreshToken() promise
    this._tokenFresh = false; // the token came from refreshToken and was not used yet
    /** @type {Map<string, unknown>} channel → last offset seen (undefined if none) */
    this.channels = new Map();
    /** @type {Map<string, unknown>} server-side channel → last offset seen */
    this.serverChannels = new Map();
    this._prevServer = new Map(); // the last connection's, until the server resubscribes
    this._unanswered = new Set(); // unsubscribed before the server answered the subscribe
    this._rpcID = 0;
    this._pending = new Map(); // rpc id or "presence:"+channel → {waiters, outstanding, timer}
    queueMicrotask(() => { if (this._gen === 0) this._start(); });
  }

  /** The last state announced by a `state` event. */
  get state() { return this._state; }

  /** Number of sends waiting for the connection to open. */
  get queued() { return this._queue.length; }

  /**
   * The current token: the last one refreshToken returned, else the
   * `token` option, else the URL's "token" query parameter.
   */
  get token() {
    if (this.opts.token) return this.opts.token;
    try { return new URL(resolve(this.url)).searchParams.get('token') || undefined; } catch { return undefined; }
  }

  /**
   * send transmits data now if the socket is open, or queues it to be sent,
   * in order, when it opens. It never throws for a full queue.
   *
   * @param {string|ArrayBufferLike|Blob|ArrayBufferView} data
   * @returns {boolean} false if data was dropped: the queue holds maxQueue
   *   sends already, or the state is "stopped" or "unauthorized" (nothing
   *   will deliver it until reconnect())
   */
  send(data) {
    if (this._ws && this._ws.readyState === OPEN) {
      this._ws.send(data);
      return true;
    }
    if (this.state === 'stopped' || this.state === 'unauthorized') return false;
    if (this._queue.length >= this.opts.maxQueue) return false;
    this._queue.push(data);
    return true;
  }

  /**
   * subscribe asks the server for a channel's messages. It is sent now if
   * open, and again on every reconnect with "since" set to the last offset
   * received, so the server can replay what was missed.
   *
   * @param {string} channel
   */
  subscribe(channel) {
    if (this.channels.has(channel)) return;
    this.channels.set(channel, undefined);
    if (this._ws && this._ws.readyState === OPEN) this._sendSubscribe(channel);
  }

  /**
   * unsubscribe stops a channel's messages and forgets its offset.
   *
   * @param {string} channel
   */
  unsubscribe(channel) {
    // A server-side subscription ends the same way.
    const server = this.serverChannels.delete(channel);
    this._prevServer.delete(channel);
    // The answer to a subscribe still on its way is not a server-side one.
    if (this.channels.has(channel) && this.channels.get(channel) === undefined) this._unanswered.add(channel);
    if (!this.channels.delete(channel) && !server) return;
    if (this._ws && this._ws.readyState === OPEN) {
      this._ws.send(JSON.stringify({ type: 'unsubscribe', channel }));
    }
  }

  /**
   * reconnect drops the current connection (if any) and connects again at
   * once with the attempt count reset. It also leaves "unauthorized" and
   * "stopped". Fields of `update` replace the url, authCheckURL or token.
   *
   * @param {{url?: string|(() => string), authCheckURL?: string|(() => string), token?: string}} [update]
   */
  reconnect(update = {}) {
    const { url, ...rest } = update;
    if (url !== undefined) this.url = url;
    merge(this.opts, rest);
    this._teardown(1000, 'reconnect');
    this._attempt = 0;
    this._start();
  }

  /**
   * presence asks who is subscribed to a channel, on every node. The
   * socket must be subscribed to it, and the server must allow presence
   * on it (--presence).
   *
   * @param {string} channel
   * @param {{timeout?: number}} [opts] milliseconds to wait (default 10000)
   * @returns {Promise<Array<{client: string, user: string}>>}
   */
  presence(channel, opts = {}) {
    return this._request('presence:' + channel, { type: 'presence', channel }, opts.timeout);
  }

  /**
   * rpc calls the server's RPC hook with method and data and resolves with
   * the answer's data, or rejects with an Error carrying the answer's
   * error (also `hook timeout`, `hook unavailable`, `rpc not available`).
   *
   * @param {string} method
   * @param {unknown} [data]
   * @param {{timeout?: number}} [opts] milliseconds to wait (default 10000)
   * @returns {Promise<unknown>}
   */
  rpc(method, data, opts = {}) {
    const id = ++this._rpcID;
    const msg = { type: 'rpc', id, method };
    if (data !== undefined) msg.data = data;
    return this._request(id, msg, opts.timeout);
  }

  /** Sends msg now and waits for the answer filed under key. */
  _request(key, msg, timeout = 10000) {
    if (!this._ws || this._ws.readyState !== OPEN) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      // Requests under one key (presence of one channel) are answered in
      // order: a request made while another is waiting gets the answer to
      // itself, the newer one, and so do the older ones.
      let p = this._pending.get(key);
      if (!p) {
        p = { waiters: [], outstanding: 0, timer: undefined };
        this._pending.set(key, p);
      }
      p.outstanding++;
      p.waiters.push({ resolve, reject });
      clearTimeout(p.timer);
      p.timer = setTimeout(() => this._settle(key, new Error('timed out'), undefined, true), timeout);
      this._ws.send(JSON.stringify(msg));
    });
  }

  /**
   * Settles the requests filed under key: with value, or err if set.
   * An answer while a newer request under key is still to be answered
   * only counts; all settles every waiter at once (timeout, close).
   */
  _settle(key, err, value, all = false) {
    const p = this._pending.get(key);
    if (!p) return false;
    if (!all && --p.outstanding > 0) return true;
    this._pending.delete(key);
    clearTimeout(p.timer);
    for (const w of p.waiters) {
      if (err) w.reject(err); else w.resolve(value);
    }
    return true;
  }

  /**
   * close closes the connection with code and reason and stops for good
   * (state "stopped"). Queued sends are kept for a later reconnect().
   *
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    this._teardown(code, reason);
    this._gen++;
    this._setState('stopped', { code, reason });
  }

  /** Closes the socket without firing its handlers and clears timers. */
  _teardown(code, reason) {
    clearTimeout(this._retryTimer);
    clearInterval(this._pingTimer);
    clearTimeout(this._refreshTimer);
    this._retryTimer = this._pingTimer = this._refreshTimer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(code, reason); } catch { /* already closing, or a code the browser refuses */ }
    }
  }

  _setState(state, detail = {}) {
    this._state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, attempt: this._attempt, ...detail } }));
  }

  /** One connection attempt: auth check, then the WebSocket. */
  async _start() {
    const gen = ++this._gen;
    this._setState('connecting');
    const check = resolve(this.opts.authCheckURL);
    if (check) {
      const doFetch = this.opts.fetch || globalThis.fetch;
      const headers = this.opts.token ? { Authorization: 'Bearer ' + this.opts.token } : {};
      let res;
      try {
        res = await doFetch(check, { headers, cache: 'no-store' });
      } catch (err) {
        if (gen === this._gen) this._retry(undefined, 'auth check failed: ' + (err && err.message || err));
        return;
      }
      if (gen !== this._gen) return;
      if (res.status === 401 || res.status === 403) {
        // A token kept from before may have been revoked or its key
        // rotated out: one more try with a new one. A new one refused
        // means the credentials are bad.
        if (this.opts.refreshToken && !this._tokenFresh && await this._newToken()) {
          if (gen === this._gen) this._start();
          return;
        }
        this._setState('unauthorized', { code: res.status, reason: res.statusText || 'unauthorized' });
        return;
      }
      // Any other status (404 from an older server, 5xx) says nothing about
      // the token: let the WebSocket attempt decide.
    }
    this._open(gen);
  }

  _open(gen) {
    const WS = this.opts.WebSocket || globalThis.WebSocket;
    let ws;
    try {
      ws = new WS(withSince(resolve(this.url), this._resumeServer()));
    } catch (err) {
      // A malformed URL (SyntaxError) will not get better by retrying.
      this._setState('stopped', { reason: String(err && err.message || err) });
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (gen !== this._gen) return;
      this._attempt = 0;
      this._tokenFresh = false;
      this._setState('open');
      for (const ch of this.channels.keys()) this._sendSubscribe(ch);
      // Subscriptions go first so queued sends see the channels in place.
      for (const data of this._queue.splice(0)) ws.send(data);
      if (this.opts.pingInterval > 0) {
        this._ping(); // an RTT right away, not one interval later
        this._pingTimer = setInterval(() => this._ping(), this.opts.pingInterval);
      }
      this._scheduleRefresh(tokenExpiry(this.token), gen);
    };
    ws.onmessage = (ev) => { if (gen === this._gen) this._receive(ev.data); };
    // A failed handshake fires error then close; close has the code.
    ws.onclose = async (ev) => {
      if (gen !== this._gen) return;
      clearInterval(this._pingTimer);
      clearTimeout(this._refreshTimer);
      this._ws = null;
      for (const key of [...this._pending.keys()]) this._settle(key, new Error('connection closed'), undefined, true);
      this._setState('closed', { code: ev.code, reason: ev.reason });
      if (ev.code === DISCONNECTED) {
        // The server's /api/disconnect: coming back would defeat it.
        this._setState('stopped', { code: ev.code, reason: ev.reason });
        return;
      }
      // The token ran out or a refresh was refused: reconnecting with it
      // would be refused too.
      if (ev.code === TOKEN_EXPIRED && this.opts.refreshToken) {
        await this._newToken();
        if (gen !== this._gen) return;
      }
      this._retry(ev.code, ev.reason);
    };
  }

  /**
   * Arms the refresh of a token expiring at exp (Unix seconds), for the
   * connection of generation gen.
   */
  _scheduleRefresh(exp, gen) {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    if (!this.opts.refreshToken || !exp) return;
    // At least a second apart, so a token returned already inside the
    // window cannot make a loop.
    const delay = Math.max(exp * 1000 - Date.now() - this.opts.refreshBefore, 1000);
    this._refreshTimer = setTimeout(async () => {
      if (gen !== this._gen) return;
      const token = await this._newToken();
      if (gen !== this._gen || !token) return;
      if (this._ws && this._ws.readyState === OPEN) {
        this._ws.send(JSON.stringify({ type: 'refresh', token }));
      }
    }, Math.min(delay, 2 ** 31 - 1));
  }

  /**
   * Calls refreshToken once at a time and installs its token: in `token`
   * (sent to authCheckURL) and in the URL's "token" parameter for the
   * next attempts. Resolves with the token, or undefined if it failed.
   */
  _newToken() {
    if (this._refreshing) return this._refreshing;
    this._refreshing = (async () => {
      try {
        const token = await this.opts.refreshToken();
        if (typeof token !== 'string' || token === '') throw new Error('refreshToken returned no token');
        this.opts.token = token;
        this._tokenFresh = true;
        if (typeof this.url === 'string') this.url = withToken(this.url, token);
        if (typeof this.opts.authCheckURL === 'string') this.opts.authCheckURL = withToken(this.opts.authCheckURL, token);
        return token;
      } catch (err) {
        this.dispatchEvent(new CustomEvent('refresh', { detail: { error: String(err && err.message || err) } }));
        return undefined;
      } finally {
        this._refreshing = null;
      }
    })();
    return this._refreshing;
  }

  /** Schedules the next attempt, or stops after maxAttempts. */
  _retry(code, reason) {
    this._attempt++;
    if (this._attempt > this.opts.maxAttempts) {
      this._setState('stopped', { code, reason });
      return;
    }
    const delay = backoffDelay(this._attempt, this.opts.minDelay, this.opts.maxDelay);
    this._setState('reconnecting', { code, reason, delay });
    const gen = this._gen;
    this._retryTimer = setTimeout(() => { if (gen === this._gen) this._start(); }, delay);
  }

  _ping() {
    if (!this._ws || this._ws.readyState !== OPEN) return;
    // t is whole wall-clock ms, easy for any server to echo; the RTT of the
    // latest ping is taken from the monotonic clock for sub-ms precision.
    this._lastPing = { t: Date.now(), at: performance.now() };
    this._ws.send(JSON.stringify({ type: 'ping', t: this._lastPing.t }));
  }

  /**
   * The server-side channels to resume on the next connection, with their
   * offsets: this connection's, else the last one's (a connection that
   * failed before the server resubscribed keeps them).
   */
  _resumeServer() {
    if (this.serverChannels.size > 0) this._prevServer = this.serverChannels;
    this.serverChannels = new Map();
    return this._prevServer;
  }

  _sendSubscribe(channel) {
    const msg = { type: 'subscribe', channel };
    const since = this.channels.get(channel);
    if (since !== undefined) msg.since = since;
    this._ws.send(JSON.stringify(msg));
  }

  _receive(data) {
    let m;
    if (typeof data === 'string' && data[0] === '{') {
      try { m = JSON.parse(data); } catch { /* not JSON: an ordinary message */ }
    }
    if (m && m.type === 'pong' && typeof m.t === 'number') {
      const p = this._lastPing;
      const ms = p && p.t === m.t ? performance.now() - p.at : Date.now() - m.t;
      this.dispatchEvent(new CustomEvent('rtt', { detail: { ms } }));
      return;
    }
    if (m && m.type === 'refreshed' && typeof m.exp === 'number') {
      this._scheduleRefresh(m.exp, this._gen);
      this.dispatchEvent(new CustomEvent('refresh', { detail: { exp: m.exp } }));
      return;
    }
    if (m && this._receiveIssue16(m)) return;
    const detail = { data };
    if (m && m.type === 'subscribed' && this._unanswered.delete(m.channel)) {
      // The late answer to a subscribe the page took back: not ours now.
    } else if (m && m.type === 'subscribed' && typeof m.channel === 'string' && !this.channels.has(m.channel)) {
      // Not asked for: a server-side subscription.
      const prev = this._prevServer.get(m.channel);
      if (!this.serverChannels.has(m.channel) || !m.recovered) {
        this.serverChannels.set(m.channel, m.recovered && prev !== undefined ? prev : m.offset);
      }
    }
    if (m && m.type === 'message' && typeof m.channel === 'string' && this.serverChannels.has(m.channel)) {
      const last = this.serverChannels.get(m.channel);
      if (!(typeof last === 'number' && typeof m.offset === 'number' && m.offset <= last)) {
        this.serverChannels.set(m.channel, m.offset);
      }
    }
    if (m && m.type === 'subscribed' && typeof m.channel === 'string') {
      // Without recovery the client starts over at the server's latest
      // offset, which is lower than ours if the channel was reset. With
      // it, the replay that follows moves the offset on.
      if (this.channels.has(m.channel) && (!m.recovered || this.channels.get(m.channel) === undefined)) {
        this.channels.set(m.channel, m.offset);
      }
      this.dispatchEvent(new CustomEvent('subscribed', {
        detail: { channel: m.channel, offset: m.offset, recovered: !!m.recovered },
      }));
    }
    if (m && m.type === 'message' && typeof m.channel === 'string') {
      const last = this.channels.get(m.channel);
      // Only subscribed channels are resumed. A replay may repeat offsets
      // already seen, so a numeric offset never moves backwards.
      if (this.channels.has(m.channel) && m.offset !== undefined &&
          !(typeof last === 'number' && typeof m.offset === 'number' && m.offset <= last)) {
        this.channels.set(m.channel, m.offset);
      }
      Object.assign(detail, { channel: m.channel, offset: m.offset, payload: m.data });
    }
    this.dispatchEvent(new CustomEvent('message', { detail }));
  }

  /**
   * Handles the messages of issue 16 (join, leave, unsubscribed, presence,
   * rpc, and errors answering a presence request); returns whether m was
   * one of them. They are events or answers, not `message` events.
   */
  _receiveIssue16(m) {
    switch (m.type) {
      case 'join':
      case 'leave':
        this.dispatchEvent(new CustomEvent(m.type, { detail: { channel: m.channel, client: m.client, user: m.user } }));
        return true;
      case 'unsubscribed':
        this.channels.delete(m.channel);
        this.serverChannels.delete(m.channel);
        this._prevServer.delete(m.channel);
        this.dispatchEvent(new CustomEvent('unsubscribed', { detail: { channel: m.channel } }));
        return true;
      case 'presence':
        this._settle('presence:' + m.channel, undefined, Array.isArray(m.clients) ? m.clients : []);
        return true;
      case 'rpc': {
        const err = m.error !== undefined && m.error !== null
          ? new Error(typeof m.error === 'string' ? m.error : JSON.stringify(m.error)) : undefined;
        this._settle(m.id, err, m.data);
        return true;
      }
      case 'error':
        // Errors a presence request gets; others stay messages.
        if (typeof m.channel === 'string' && (m.error === 'presence not enabled for this channel' || m.error === 'not subscribed')) {
          return this._settle('presence:' + m.channel, new Error(m.error));
        }
        return false;
    }
    return false;
  }
}

/**
 * connect returns a new DuplexSocket for url, already connecting.
 *
 * @param {string|(() => string)} url
 * @param {DuplexOptions} [opts]
 * @returns {DuplexSocket}
 */
export function connect(url, opts) {
  return new DuplexSocket(url, opts);
}

function resolve(v) { return typeof v === 'function' ? v() : v; }

/**
 * withToken replaces the "token" query parameter of url (absolute or
 * relative) if it has one, and returns url unchanged otherwise.
 */
function withToken(url, token) {
  let u;
  try { u = new URL(url, 'http://base.invalid'); } catch { return url; }
  if (!u.searchParams.has('token')) return url;
  u.searchParams.set('token', token);
  return u.origin === 'http://base.invalid' ? u.pathname + u.search + u.hash : u.toString();
}

/**
 * withSince adds a "since" query parameter CHANNEL:OFFSET to url for each
 * channel of offsets whose offset is known (docs/protocol.md,
 * "Server-side subscriptions").
 */
function withSince(url, offsets) {
  const known = [...offsets].filter(([, off]) => off !== undefined && off !== null);
  if (known.length === 0) return url;
  let u;
  try { u = new URL(url, 'http://base.invalid'); } catch { return url; }
  for (const [ch, off] of known) u.searchParams.append('since', ch + ':' + off);
  return u.origin === 'http://base.invalid' ? u.pathname + u.search + u.hash : u.toString();
}

/** Copies the defined fields of src onto dst, so undefined keeps a default. */
function merge(dst, src) {
  for (const [k, v] of Object.entries(src || {})) if (v !== undefined) dst[k] = v;
  return dst;
}
